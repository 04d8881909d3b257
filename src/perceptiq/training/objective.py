"""The training objective: a weighted sum of named losses from :mod:`perceptiq.losses`.

Each :class:`~perceptiq.training.config.LossTerm` names a loss of :data:`LOSSES` and what the
predictions are compared with (``target``):

* ``"mos"``: the images' MOS (rows without a MOS are left out of that term);
* ``"teacher"``: the teacher model's scores of the same crops (distillation, Ma et al., VQualA 2025 FIQA
  report);
* ``"method"``: the global ranking scores of the images' methods, for the group-mean fidelity loss of
  Chen et al., Learning from Model Rankings, 2025 (eqs. 3-5; rows without a ranked method are left out).

A term whose rows are all left out contributes 0 with a zero gradient. Losses are computed in float32
(also under autocast). Under DDP every process computes the batch-level losses (PLCC, fidelity over
pairs, group means) on its own micro-batch; only the per-image losses (MSE, L1) then equal those of one
process with the whole batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from perceptiq import losses
from perceptiq._registry import Registry
from perceptiq.errors import InputError
from perceptiq.training.config import LossTerm

__all__ = ["LOSSES", "Objective", "build_objective"]

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES: Registry[tuple[str, Callable[..., LossFn]]] = Registry("loss")


def _register(name: str, kind: str, factory: Callable[..., LossFn]) -> None:
    LOSSES.register(name)(lambda: (kind, factory))


def _mse(**options: object) -> LossFn:
    return torch.nn.MSELoss(**options)


def _l1(**options: object) -> LossFn:
    return torch.nn.L1Loss(**options)


_register("mse", "pointwise", _mse)
_register("l1", "pointwise", _l1)
_register("plcc", "pointwise", losses.PLCCLoss)
_register("srcc", "pointwise", losses.SRCCLoss)
_register("fidelity", "pointwise", losses.FidelityLoss)
_register("mse_plcc", "pointwise", losses.MSEPLCCLoss)
_register("l1_rank", "pointwise", losses.L1RankLoss)
_register("plcc_rank", "pointwise", losses.PLCCRankLoss)
_register("pairwise_logistic_rank", "pointwise", losses.PairwiseLogisticRankLoss)
_register("correlation_focal", "pointwise", losses.CorrelationFocalLoss)
_register("group_mean_fidelity", "group", losses.GroupMeanFidelityLoss)


@dataclass
class _Term:
    label: str
    weight: float
    target: str
    fn: Callable[..., Tensor]


class Objective:
    """Callable ``(pred, batch, teacher_pred) -> (total, {label: value})`` over the configured terms."""

    def __init__(self, terms: Sequence[_Term], group_scores: Tensor | None = None) -> None:
        self.terms = list(terms)
        self.group_scores = group_scores

    @property
    def labels(self) -> list[str]:
        return [t.label for t in self.terms]

    @property
    def needs_teacher(self) -> bool:
        return any(t.target == "teacher" for t in self.terms)

    @property
    def needs_groups(self) -> bool:
        return any(t.target == "method" for t in self.terms)

    def __call__(
        self, pred: Tensor, batch: dict[str, Tensor], teacher: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        pred = pred.float().reshape(-1)
        parts: dict[str, Tensor] = {}
        total = pred.sum() * 0.0
        for term in self.terms:
            value = self._term(term, pred, batch, teacher)
            parts[term.label] = value.detach()
            total = total + term.weight * value
        return total, parts

    def _term(self, term: _Term, pred: Tensor, batch: dict[str, Tensor], teacher: Tensor | None) -> Tensor:
        if term.target == "method":
            group = batch["group"].to(pred.device)
            keep = group >= 0
            if int(keep.sum()) == 0:
                return pred.sum() * 0.0
            scores = self.group_scores.to(device=pred.device, dtype=pred.dtype)
            return term.fn(pred[keep], group[keep], scores)
        if term.target == "teacher":
            if teacher is None:
                raise InputError(f"loss {term.label!r} targets the teacher, but no teacher is configured")
            target = teacher.float().reshape(-1).to(pred.device)
        else:
            target = batch["mos"].float().to(pred.device)
        keep = torch.isfinite(target)
        if int(keep.sum()) == 0:
            return pred.sum() * 0.0
        return term.fn(pred[keep], target[keep])


def build_objective(terms: Sequence[LossTerm], group_scores: Tensor | None = None) -> Objective:
    """The :class:`Objective` of the recipe's loss terms (unknown names and bad targets raise)."""
    built = []
    counts: dict[str, int] = {}
    for i, term in enumerate(terms):
        kind, factory = LOSSES.create(term.name)
        if (kind == "group") != (term.target == "method"):
            need = "'method'" if kind == "group" else "'mos' or 'teacher'"
            raise InputError(f"loss.{i} ({term.name}): target must be {need}, got {term.target!r}")
        try:
            fn = factory(**term.options)
        except TypeError as err:
            raise InputError(f"loss.{i} ({term.name}): bad options {term.options}: {err}") from None
        base = f"{term.name}_teacher" if term.target == "teacher" else term.name
        counts[base] = counts.get(base, 0) + 1
        label = base if counts[base] == 1 else f"{base}_{counts[base]}"
        built.append(_Term(label, term.weight, term.target, fn))
    if any(t.target == "method" for t in built) and group_scores is None:
        raise InputError("a loss with target 'method' needs data.method_scores (the methods' global ranking)")
    return Objective(built, group_scores)
