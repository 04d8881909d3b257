"""Readers of the published layouts of public IQA datasets, one module per group.

* :mod:`~perceptiq.data.readers.natural`: KonIQ-10k, SPAQ, LIVE Challenge, VQualA 2025 face challenge.
* :mod:`~perceptiq.data.readers.full_reference`: KADID-10k, CSIQ, TID2013, PIPAL.
* :mod:`~perceptiq.data.readers.generated`: AGIQA-3K, EvalMuse-40K, EvalMuse-Structure, ISRGen-QA.
* :mod:`~perceptiq.data.readers.annotations`: EvalMuse-Structure region annotations -> heatmaps.

The public entry points are re-exported by :mod:`perceptiq.data.datasets`.
"""
