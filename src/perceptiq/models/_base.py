"""The learned-model API: config dataclasses, the model registry, and weight loading/saving.

A model family is one file in :mod:`perceptiq.models` holding a config dataclass (a subclass of
:class:`ModelConfig`), a model class (a subclass of :class:`QualityModel`) and registered entry points
(``@register_model("family_variant")`` on a function returning the config of that variant).

Weights live as ``model.safetensors`` beside ``config.json`` in a directory, loaded from a local path
or a Hugging Face hub id (``huggingface_hub.snapshot_download``). Nothing downloads implicitly:
weights are read only when ``weights=`` is given, and an offline machine gets an error that names
the files to fetch.

:func:`create_model` without weights builds a fresh model (for training). Scoring refuses a model
whose weights were never trained (:func:`require_trained_weights`), as its scores would come from
random initial weights; a pretrained backbone under a random head is untrained as well.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from perceptiq._registry import OptionSpec, Registry, option_error
from perceptiq.errors import DataFileError, InputError, PerceptiqError
from perceptiq.functional.patches import InputPolicy, apply_policy

__all__ = [
    "ModelConfig",
    "QualityModel",
    "MODELS",
    "FAMILIES",
    "register_family",
    "register_model",
    "create_model",
    "list_models",
    "save_model",
    "load_model",
    "resolve_weights_dir",
    "WeightsError",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "DEFAULT_MODEL",
    "packaged_weights_dir",
    "require_trained_weights",
    "describe_models",
    "initial_weights_wanted",
    "MODEL_DTYPES",
    "check_dtype",
    "gpu_dtype",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_MODEL = "perceptiq_nr_v2"
"""The model ``perceptiq score`` uses when neither a metric nor a model is named."""
MODEL_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
"""Values of a model config's ``dtype`` field."""


def check_dtype(name: str) -> torch.dtype:
    """The torch dtype of a config's ``dtype`` name; an unknown name is an :class:`InputError`."""
    if name not in MODEL_DTYPES:
        raise InputError(f"dtype must be one of {sorted(MODEL_DTYPES)}, got {name!r}")
    return MODEL_DTYPES[name]


def gpu_dtype(name: str, device: torch.device) -> torch.dtype:
    """The dtype a config's ``dtype`` asks for on a GPU; float32 on other devices, where half precision
    is slower or missing."""
    wanted = check_dtype(name)
    return wanted if device.type == "cuda" else torch.float32


_WEIGHTS_ROOT = Path(__file__).resolve().parent / "weights"


class WeightsError(PerceptiqError):
    """Weights cannot be found, downloaded or matched to the model."""


@dataclass
class ModelConfig:
    """Base of every family's configuration; serialised to JSON with the family name.

    Attributes:
        family: registry name of the model family (set by each family's config class).
        input_policy: how the model treats resolution (:class:`~perceptiq.functional.patches.InputPolicy`).
    """

    family: ClassVar[str] = ""
    input_policy: InputPolicy = field(default_factory=InputPolicy)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_policy"] = dataclasses.asdict(self.input_policy)
        return {"family": self.family, **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        data = {k: v for k, v in data.items() if k != "family"}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise option_error(cls.__name__, unknown, known)
        if isinstance(data.get("input_policy"), dict):
            policy = dict(data["input_policy"])
            for key in ("tile_size", "stride"):
                if isinstance(policy.get(key), list):
                    policy[key] = tuple(policy[key])
            data["input_policy"] = InputPolicy(**policy)
        for f in dataclasses.fields(cls):  # JSON has no tuples
            if isinstance(data.get(f.name), list) and isinstance(f.default, tuple):
                data[f.name] = tuple(data[f.name])
        return cls(**data)

    def replace(self, **changes: Any) -> ModelConfig:
        """A copy with ``changes`` applied (unknown names raise)."""
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise option_error(type(self).__name__, unknown, known)
        return dataclasses.replace(self, **changes)


class QualityModel(torch.nn.Module, metaclass=abc.ABCMeta):
    """Base class of learned quality models.

    ``forward(x)`` maps a preprocessed batch (B, 3, h, w) in [0, 1] to (B,) raw scores (used in
    training); :meth:`score` applies the model's :attr:`input_policy` (or one given) to images of any
    size and returns one score per image, higher = better, in :attr:`score_range`.

    :attr:`has_trained_weights` is False for a freshly built model and becomes True when
    :func:`load_weights` fills it; a family whose construction loads complete pretrained weights
    (e.g. a zero-shot image-text model) sets it itself.
    """

    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    score_range: ClassVar[tuple[float, float] | None] = None
    needs_reference: ClassVar[bool] = False
    has_trained_weights: bool = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def input_policy(self) -> InputPolicy:
        return self.config.input_policy

    @abc.abstractmethod
    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 3, h, w) in [0, 1] -> (B,) scores."""

    def input_placement(self) -> tuple[torch.device, torch.dtype] | None:
        """Device and dtype :meth:`score` moves images to: those of the first parameter (None: none)."""
        param = next(self.parameters(), None)
        return None if param is None else (param.device, param.dtype)

    @torch.no_grad()
    def score(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        max_batch: int = 16,
        policy: InputPolicy | None = None,
    ) -> torch.Tensor:
        """Scores of images (B, 3, H, W) in [0, 1] of any size, shape (B,).

        ``policy`` overrides the model's :attr:`input_policy` (e.g. ``perceptiq score --policy``);
        None applies the model's own.
        """
        was_training = self.training
        self.eval()
        try:
            placement = self.input_placement()
            if placement is not None:
                images = images.to(*placement)
                reference = None if reference is None else reference.to(*placement)
            fn: Callable[..., torch.Tensor] = self.forward
            chosen = self.input_policy if policy is None else policy
            return apply_policy(fn, images, chosen, reference=reference, max_batch=max_batch)
        finally:
            self.train(was_training)


def _variant_options(factory: Callable[..., ModelConfig]) -> OptionSpec:
    """Options of a model variant: ``weights`` and the fields of the config it returns, with its values."""
    cfg = factory()
    return {"weights": None, **{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}}, False


FAMILIES: Registry[type[QualityModel]] = Registry("model family")
MODELS: Registry[ModelConfig] = Registry("model", options=_variant_options)


def register_family(name: str) -> Callable[[type[QualityModel]], type[QualityModel]]:
    """Class decorator registering a :class:`QualityModel` subclass as family ``name``."""

    def decorator(cls: type[QualityModel]) -> type[QualityModel]:
        FAMILIES.register(name)(lambda: cls)
        return cls

    return decorator


def register_model(
    name: str, *, packaged_weights: str | None = None, licence: str | None = None
) -> Callable[[Callable[[], ModelConfig]], Callable[[], ModelConfig]]:
    """Decorator registering a function that returns the :class:`ModelConfig` of variant ``name``.

    ``packaged_weights`` names a folder under ``perceptiq/models/weights/`` shipped inside the package;
    :func:`create_model` then loads it when no other ``weights=`` are given (no download involved).
    ``licence`` is the licence of those weights (stated in the folder's ``MODEL_CARD.md``).
    """
    if packaged_weights is not None and licence is None:
        raise InputError(f"model {name!r}: packaged weights need their licence")

    def decorator(factory: Callable[[], ModelConfig]) -> Callable[[], ModelConfig]:
        factory.packaged_weights = packaged_weights  # type: ignore[attr-defined]
        factory.licence = licence  # type: ignore[attr-defined]
        return MODELS.register(name)(factory)

    return decorator


def packaged_weights_dir(name: str) -> Path | None:
    """Folder of the weights shipped inside the package for variant ``name`` (None if it has none)."""
    folder = getattr(MODELS.get(name), "packaged_weights", None)
    if folder is None:
        return None
    path = _WEIGHTS_ROOT / folder
    if not (path / WEIGHTS_FILE).exists():
        raise WeightsError(f"{path}: the packaged weights of {name!r} are missing from this installation")
    return path


def list_models() -> list[str]:
    """Registered model variant names (``perceptiq models`` shows them with their weights)."""
    return MODELS.names()


def describe_models() -> list[dict[str, Any]]:
    """One row per variant: name, family, whether trained weights ship with perceptiq, their licence."""
    rows = []
    for name in MODELS.names():
        factory = MODELS.get(name)
        folder = getattr(factory, "packaged_weights", None)
        shipped = folder is not None and (_WEIGHTS_ROOT / folder / WEIGHTS_FILE).exists()
        doc = (factory.__doc__ or "").strip()
        rows.append(
            {
                "name": name,
                "family": factory().family,
                "shipped_weights": shipped,
                "licence": getattr(factory, "licence", None) if shipped else None,
                "summary": doc.splitlines()[0] if doc else "",
            }
        )
    return rows


def require_trained_weights(model: QualityModel, name: str, *, allow_random_weights: bool = False) -> None:
    """Refuse to score with ``model`` unless its weights were trained (or random ones are allowed).

    A variant without shipped weights, built without ``weights=``, has random initial weights (or a
    pretrained backbone under a random head): its scores differ on every run and mean nothing.
    """
    if model.has_trained_weights or allow_random_weights:
        return
    raise WeightsError(
        f"model {name!r} has no trained weights (none ship with perceptiq and none were given), so it "
        "would score with random initial weights; give trained weights (--weights / weights=) or "
        "pass --allow-random-weights (allow_random_weights=True) to score with them anyway"
    )


_INITIAL_WEIGHTS = contextvars.ContextVar("perceptiq_initial_weights", default=True)


def initial_weights_wanted() -> bool:
    """Whether a family being built should read the files it initialises from (a pretrained backbone).

    False while :func:`create_model` with weights or :func:`load_model` builds a model only to fill
    every weight from a saved ``model.safetensors`` (a strict load): the initial files are then not
    needed, so a saved model loads without them.
    """
    return _INITIAL_WEIGHTS.get()


@contextlib.contextmanager
def weights_follow_context() -> Iterator[None]:
    """Build models inside this block without their initial files: every weight is filled afterwards."""
    token = _INITIAL_WEIGHTS.set(False)
    try:
        yield
    finally:
        _INITIAL_WEIGHTS.reset(token)


def _build(config: ModelConfig, *, weights_follow: bool = False) -> QualityModel:
    cls = FAMILIES.create(config.family)
    if not weights_follow:
        return cls(config)
    with weights_follow_context():
        return cls(config)


def create_model(name: str, weights: str | Path | None = None, **config: Any) -> QualityModel:
    """Build model ``name`` (a registered variant), with ``config`` overrides, optionally loading weights.

    Args:
        name: registered variant (``list_models()``, ``perceptiq models``).
        weights: a directory with ``config.json`` + ``model.safetensors``, a ``.safetensors`` file, or a
            hub id (``user/repo``). The directory's config overrides the variant's defaults.
        config: field overrides of the variant's config dataclass.

    Without trained weights (none given, none shipped) the model is freshly initialised, as training
    needs; scoring with it is refused (:func:`require_trained_weights`).
    """
    MODELS.check_options(name, config)
    cfg = MODELS.create(name)
    if weights is None:
        weights = packaged_weights_dir(name)
    if weights is not None:
        directory = resolve_weights_dir(weights)
        if (directory / CONFIG_FILE).exists():
            saved = read_config(directory / CONFIG_FILE)
            if saved.family != cfg.family:
                raise WeightsError(
                    f"{directory}: weights are for family {saved.family!r}, not {cfg.family!r} ({name})"
                )
            cfg = saved
    cfg = cfg.replace(**config) if config else cfg
    model = _build(cfg, weights_follow=weights is not None)
    if weights is not None:
        load_weights(model, weights)
    return model


def read_config(path: Path) -> ModelConfig:
    """The :class:`ModelConfig` stored in a ``config.json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataFileError(path, f"cannot read model config: {err}") from err
    family = data.get("family")
    if not family:
        raise DataFileError(path, "model config lacks 'family'")
    return FAMILIES.create(family).config_class.from_dict(data)


def resolve_weights_dir(weights: str | Path) -> Path:
    """Local directory holding the weights: the path itself, or a hub snapshot (cache first)."""
    path = Path(weights)
    if path.exists():
        return path.parent if path.is_file() else path
    text = str(weights)
    if text.count("/") == 1 and not text.startswith((".", "/")):
        return _hub_snapshot(text)
    raise WeightsError(f"{weights}: no such file or directory, and not a hub id of the form 'user/repo'")


def _hub_snapshot(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise WeightsError(f"{repo_id}: loading from the hub needs `pip install huggingface_hub`") from err
    patterns = [CONFIG_FILE, WEIGHTS_FILE]
    with contextlib.suppress(Exception):  # not in the local cache: try the network next
        return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as err:  # noqa: BLE001 - any hub/network failure becomes one clear line
        raise WeightsError(
            f"{repo_id}: weights are not in the local cache and cannot be downloaded ({type(err).__name__}); "
            f"fetch {CONFIG_FILE} and {WEIGHTS_FILE} of that repository on a connected machine and pass "
            "their "
            "directory as weights="
        ) from None


def load_weights(model: QualityModel, weights: str | Path) -> None:
    """Load a state dict file into ``model`` (strict; shape mismatches listed by name).

    ``weights`` is a weights file (:func:`~perceptiq.models._weights_file.read_state_dict`) or a
    directory / hub id holding ``model.safetensors``.
    """
    from perceptiq.models._weights_file import read_state_dict

    path = Path(weights)
    file = path if path.is_file() else resolve_weights_dir(weights) / WEIGHTS_FILE
    state = read_state_dict(file, error=WeightsError)
    own = model.state_dict()
    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if mismatched or missing or unexpected:
        parts = []
        if mismatched:
            parts.append(f"shape mismatch (file vs model): {'; '.join(mismatched[:3])}")
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
        raise WeightsError(f"{file}: weights do not fit {type(model).__name__}: " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    model.has_trained_weights = True


def save_model(model: QualityModel, directory: str | Path, *, dtype: torch.dtype | None = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` (optionally cast, e.g. to float16) to ``directory``."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CONFIG_FILE).write_text(
        json.dumps(model.config.to_dict(), indent=2) + "\n", encoding="utf-8"
    )
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        state[k] = v.contiguous()
    save_file(state, str(directory / WEIGHTS_FILE))
    return directory


def load_model(weights: str | Path) -> QualityModel:
    """Build the model described by ``config.json`` of a weights directory or hub id and load its weights."""
    directory = resolve_weights_dir(weights)
    if not (directory / CONFIG_FILE).exists():
        raise WeightsError(f"{directory}: no {CONFIG_FILE} (needed to know the model family)")
    model = _build(read_config(directory / CONFIG_FILE), weights_follow=True)
    load_weights(model, directory)
    return model
