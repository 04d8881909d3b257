"""Datasets and manifests (KonIQ-10k, KADID-10k, LIVE Challenge, PIPAL, AGIQA-3K, EvalMuse, ...),
content-independent splits, seeded distortions and severity ladders.

* :mod:`~perceptiq.data.manifest`: the one manifest table format (CSV / JSON Lines / Parquet).
* :mod:`~perceptiq.data.datasets`: readers of the published dataset layouts (``read_dataset``).
* :mod:`~perceptiq.data.splits`: content-independent train/val/test splits and k-fold assignment.
* :mod:`~perceptiq.data.sampling`: batches and pairs drawn within one dataset (no scale realignment).
"""

from perceptiq.data.datasets import (
    DATASETS,
    list_datasets,
    rasterise_annotations,
    read_agiqa3k,
    read_csiq,
    read_dataset,
    read_evalmuse40k,
    read_evalmuse_structure,
    read_face_challenge,
    read_isrgen_qa,
    read_kadid10k,
    read_koniq10k,
    read_live_challenge,
    read_pipal,
    read_spaq,
    read_tid2013,
)
from perceptiq.data.manifest import MANIFEST_COLUMNS, read_manifest, validate_manifest, write_manifest
from perceptiq.data.sampling import DatasetBatchSampler, thurstone_target, within_dataset_pairs
from perceptiq.data.splits import check_content_split, content_split, kfold

__all__ = [
    "DATASETS",
    "MANIFEST_COLUMNS",
    "DatasetBatchSampler",
    "check_content_split",
    "content_split",
    "kfold",
    "list_datasets",
    "rasterise_annotations",
    "read_agiqa3k",
    "read_csiq",
    "read_dataset",
    "read_evalmuse40k",
    "read_evalmuse_structure",
    "read_face_challenge",
    "read_isrgen_qa",
    "read_kadid10k",
    "read_koniq10k",
    "read_live_challenge",
    "read_manifest",
    "read_pipal",
    "read_spaq",
    "read_tid2013",
    "thurstone_target",
    "validate_manifest",
    "within_dataset_pairs",
    "write_manifest",
]
