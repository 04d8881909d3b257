"""Parameter and compute budget of a model: parameters, multiply-accumulates (MACs) and FLOPs.

The VQualA 2025 face IQA challenge (Ma et al., VQualA 2025 FIQA report) limits a model to 0.5 "GFLOPs" and 5M
parameters per
forward pass. The MobileNetV2 baseline has 0.2995 G multiply-accumulates at 224 x 224, so the limit
is evidently counted in MACs (MobileNetV2 baseline count): Conv2d MACs = ``H_out W_out C_out (C_in / groups)
k_h k_w``,
Linear MACs = ``in * out``, batch 1, at the model's actual input size (per crop).

Counting uses ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass at batch 1, which
counts 2 FLOPs per multiply-accumulate of convolutions, matrix products (linear layers, attention
``q k^T`` and ``attn v``, ``scaled_dot_product_attention``); ``MACs = FLOPs / 2``. Normalisation,
activations, pooling, bias additions and elementwise operations are not counted (the thop/ptflops
convention; fvcore also adds about one operation per element of normalisation layers).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from perceptiq.errors import InputError
from perceptiq.models._base import QualityModel, create_model, load_model

__all__ = [
    "FIQA_MAX_MACS",
    "FIQA_MAX_PARAMS",
    "Budget",
    "count_parameters",
    "count_macs",
    "crops_per_image",
    "model_budget",
    "resolve_model",
    "parse_size",
]

FIQA_MAX_MACS = 0.5e9
FIQA_MAX_PARAMS = 5_000_000


@dataclass(frozen=True)
class Budget:
    """Compute budget of one forward pass at batch 1.

    Attributes:
        model: the model's name or description.
        input_size: (height, width) of the forward input.
        params: number of parameters (frozen ones included).
        trainable_params: parameters with ``requires_grad``.
        macs: multiply-accumulates of one forward pass.
        flops: ``2 * macs``.
        crops_per_image: forward passes per image under the model's input policy (None when unknown or
            dependent on the image size).
        max_macs, max_params: the limits checked by :attr:`fits` (face IQA challenge by default).
    """

    model: str
    input_size: tuple[int, int]
    params: int
    trainable_params: int
    macs: int
    flops: int
    crops_per_image: int | None = None
    max_macs: float = FIQA_MAX_MACS
    max_params: float = FIQA_MAX_PARAMS

    @property
    def gmacs(self) -> float:
        return self.macs / 1e9

    @property
    def gflops(self) -> float:
        return self.flops / 1e9

    @property
    def fits_macs(self) -> bool:
        return self.macs <= self.max_macs

    @property
    def fits_params(self) -> bool:
        return self.params <= self.max_params

    @property
    def fits(self) -> bool:
        """Whether both limits hold (MACs and parameters, each inclusive)."""
        return self.fits_macs and self.fits_params

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        macs_per_image = None if self.crops_per_image is None else self.macs * self.crops_per_image
        data.update(
            gmacs=self.gmacs,
            gflops=self.gflops,
            macs_per_image=macs_per_image,
            fits_macs=self.fits_macs,
            fits_params=self.fits_params,
            fits=self.fits,
        )
        return data


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(all, trainable) parameter counts; shared parameters count once."""
    params = list(module.parameters())
    return sum(p.numel() for p in params), sum(p.numel() for p in params if p.requires_grad)


def count_macs(
    module: nn.Module, input_size: tuple[int, int], *, with_reference: bool = False, channels: int = 3
) -> int:
    """Multiply-accumulates of ``module(x)`` (or ``module(x, reference)``) for one (1, C, H, W) input.

    The module runs once in eval mode without gradients (its train/eval state is restored); inputs are
    uniform random values in [0, 1] from a fixed seed on the module's device and dtype.
    """
    from torch.utils.flop_counter import FlopCounterMode

    h, w = input_size
    param = next(module.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, channels, h, w, generator=generator).to(device, dtype)
    ref = torch.rand(1, channels, h, w, generator=generator).to(device, dtype) if with_reference else None
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            if ref is None:
                module(x)
            else:
                module(x, ref)
    finally:
        module.train(was_training)
    return int(counter.get_total_flops()) // 2


def crops_per_image(model: nn.Module) -> int | None:
    """Forward passes per image under a model's input policy (None if unknown or image-size dependent)."""
    if not isinstance(model, QualityModel) or type(model).score is not QualityModel.score:
        return None  # not a quality model, or one that applies its own policies (an ensemble)
    policy = model.input_policy
    if policy.mode in ("full", "resize_budget"):
        return 1
    if policy.mode == "random_patches":
        return policy.num_patches
    return None


def model_budget(
    model: nn.Module,
    input_size: tuple[int, int],
    *,
    name: str = "",
    max_macs: float = FIQA_MAX_MACS,
    max_params: float = FIQA_MAX_PARAMS,
) -> Budget:
    """The :class:`Budget` of ``model`` at ``input_size``; full-reference models get a reference too."""
    total, trainable = count_parameters(model)
    macs = count_macs(model, input_size, with_reference=bool(getattr(model, "needs_reference", False)))
    return Budget(
        model=name or type(model).__name__,
        input_size=(int(input_size[0]), int(input_size[1])),
        params=total,
        trainable_params=trainable,
        macs=macs,
        flops=2 * macs,
        crops_per_image=crops_per_image(model),
        max_macs=max_macs,
        max_params=max_params,
    )


def resolve_model(spec: str) -> nn.Module:
    """A model from a name: a registered variant, a weights directory, ``timm:NAME`` or ``torchvision:NAME``.

    ``timm:`` and ``torchvision:`` models are built without weights as one-output regressors
    (``num_classes=1``), the form in which the face IQA challenge counts them.
    """
    if spec.startswith("timm:"):
        import timm

        name = spec.removeprefix("timm:")
        if not timm.is_model(name):
            raise InputError(f"unknown timm model {name!r} (see timm.list_models())")
        return timm.create_model(name, pretrained=False, num_classes=1)
    if spec.startswith("torchvision:"):
        import torchvision

        name = spec.removeprefix("torchvision:")
        if name not in torchvision.models.list_models():
            raise InputError(f"unknown torchvision model {name!r} (see torchvision.models.list_models())")
        return torchvision.models.get_model(name, weights=None, num_classes=1)
    if Path(spec).exists():
        return load_model(spec)
    return create_model(spec)


def parse_size(text: str) -> tuple[int, int]:
    """``"224"`` -> (224, 224); ``"HxW"`` (e.g. ``"1152x2040"``) -> (H, W)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or min(values) < 1:
        raise InputError(f"input size must be N or HxW with positive integers, got {text!r}")
    return values[0], values[1]
