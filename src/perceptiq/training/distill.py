"""Teacher -> student distillation and self-training on pseudo-labels (Ma et al., VQualA 2025 FIQA report,
VQualA 2025 FIQA).

The ECNU-SJTU winner trains a teacher on the labelled faces, scores about 200k unlabelled faces with
it (pseudo-labels), retrains the teacher on labelled + pseudo-labelled images (self-training, without
input noise so as not to alter perceived quality), pseudo-labels a second unlabelled set with the
enhanced teacher, and trains the lightweight student on the ground truth plus both pseudo-labelled sets.
Other teams add an online term: MSE between the student's and the teacher's scores of the same input
(2077Agent: weight 0.5).

Here: :func:`pseudo_label_folder` scores every image of a folder with a teacher (its own input policy,
``model.score``) and returns manifest rows (``image``, ``mos`` = teacher score, ``dataset``, ``split``);
the trainer appends them to the training rows. One self-training round is one training run whose
``distill.teacher`` is the previous round's model; the online term is a loss with ``target: teacher``,
for which :func:`teacher_scores` scores the student's crops.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch

from perceptiq.errors import InputError
from perceptiq.io.images import find_images, read_image
from perceptiq.models import QualityModel, load_model

__all__ = ["load_teacher", "score_images", "pseudo_label_folder", "teacher_scores"]


def load_teacher(weights: str | Path, device: torch.device | str = "cpu") -> QualityModel:
    """A frozen teacher (eval mode, no gradients) from a perceptiq weights directory."""
    teacher = load_model(weights).to(device).eval()
    teacher.requires_grad_(False)
    return teacher


@torch.no_grad()
def score_images(
    model: QualityModel, paths: Sequence[str | Path], *, device: torch.device | str = "cpu"
) -> list[float]:
    """``model.score`` of each image file (the model's input policy), one float per path."""
    model = model.to(device)
    return [float(model.score(read_image(p, device=device))[0]) for p in paths]


def pseudo_label_folder(
    teacher: QualityModel,
    folder: str | Path,
    *,
    dataset: str = "pseudo",
    device: torch.device | str = "cpu",
) -> pd.DataFrame:
    """Manifest rows for every image under ``folder``, with the teacher's score as ``mos`` (self-training)."""
    paths = find_images(folder)
    if not paths:
        raise InputError(f"{folder}: no images to pseudo-label")
    scores = score_images(teacher, paths, device=device)
    return pd.DataFrame(
        {
            "image": [str(Path(p).resolve()) for p in paths],
            "mos": scores,
            "dataset": dataset,
            "split": "train",
        }
    )


@torch.no_grad()
def teacher_scores(teacher: QualityModel, images: torch.Tensor) -> torch.Tensor:
    """The teacher's raw scores (B,) of the student's training crops (online distillation target)."""
    return teacher(images).float().reshape(-1)
