"""Classical no-reference metrics as pure functions.

- :mod:`~perceptiq.functional.nr.nss`: grey conversion, MSCN coefficients, GGD/AGGD moment matching;
- :mod:`~perceptiq.functional.nr.niqe`: NIQE patch features and the MVG distance;
- :mod:`~perceptiq.functional.nr.brisque`: BRISQUE features, ``svm-scale`` and the RBF SVR.

Inputs are grey images ``(B, H, W)`` in ``[0, 255]``; scores are lower-is-better. The registered
metrics are in :mod:`perceptiq.metrics.nr`.
"""
