"""Datasets and manifests (KonIQ-10k, KADID-10k, LIVE Challenge, PIPAL, AGIQA-3K, EvalMuse, ...),
content-independent splits and seeded synthetic distortions.

Filled in by the training issue; named now so the layout shows the whole toolkit.
"""
