"""Readers of the published layouts of public IQA datasets, all returning the manifest table.

Every reader is ``read_<name>(root, **options) -> pandas.DataFrame`` with the columns of
:data:`perceptiq.data.manifest.MANIFEST_COLUMNS` in order: paths absolute, ``dataset`` filled, ``mos``
higher = better on the dataset's own scale (never realigned across datasets; multi-dataset training
samples pairs within one dataset, see :mod:`perceptiq.data.sampling`). Each reader's docstring describes
the layout it expects; where the published layout is not certain it says so and ``columns=`` (a map
from manifest field to label-file column) or folder options adapt it. Missing label files, missing
columns and listed images that do not exist raise :class:`~perceptiq.errors.DataFileError` naming
the file.

=====================  ======================================  =======================================
name                   reader                                  content column for splits
=====================  ======================================  =======================================
``koniq10k``           :func:`read_koniq10k`                   image
``kadid10k``           :func:`read_kadid10k`                   ref
``spaq``               :func:`read_spaq`                       image
``live-challenge``     :func:`read_live_challenge`             image
``csiq``               :func:`read_csiq`                       ref
``tid2013``            :func:`read_tid2013`                    ref
``pipal``              :func:`read_pipal`                      ref
``agiqa3k``            :func:`read_agiqa3k`                    prompt
``evalmuse40k``        :func:`read_evalmuse40k`                prompt
``evalmuse-structure`` :func:`read_evalmuse_structure`         prompt
``isrgen-qa``          :func:`read_isrgen_qa`                  ref (the HR image behind all its LR inputs)
``face-challenge``     :func:`read_face_challenge`             image
=====================  ======================================  =======================================
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from perceptiq.data.readers._common import DATASETS
from perceptiq.data.readers.annotations import HEATMAP_LEVELS, annotation_counts, rasterise_annotations
from perceptiq.data.readers.full_reference import (
    CSIQ_DISTORTIONS,
    read_csiq,
    read_kadid10k,
    read_pipal,
    read_tid2013,
)
from perceptiq.data.readers.generated import (
    parse_isrgen_line,
    read_agiqa3k,
    read_evalmuse40k,
    read_evalmuse_structure,
    read_isrgen_qa,
)
from perceptiq.data.readers.natural import read_face_challenge, read_koniq10k, read_live_challenge, read_spaq

__all__ = [
    "DATASETS",
    "CSIQ_DISTORTIONS",
    "HEATMAP_LEVELS",
    "annotation_counts",
    "list_datasets",
    "parse_isrgen_line",
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
    "read_pipal",
    "read_spaq",
    "read_tid2013",
]


def read_dataset(name: str, root: str | Path, **options: object) -> pd.DataFrame:
    """Read the dataset registered as ``name`` from the folder ``root`` (options go to its reader).

    Example:
        >>> "koniq10k" in list_datasets()
        True
    """
    return DATASETS.get(name)(root, **options)


def list_datasets() -> list[str]:
    """Sorted names of the registered dataset readers."""
    return DATASETS.names()
