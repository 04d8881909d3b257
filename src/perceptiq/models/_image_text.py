"""Image-text backbones behind one small interface, shared by the prompt-based model families.

Towers are built from a configuration with random weights and never downloaded:

* ``library="transformers"``: ``arch`` is ``"clip"`` (``CLIPModel``), ``"siglip"`` (``SiglipModel``) or
  ``"siglip2"`` (``Siglip2Model`` with NaFlex: native aspect ratio and a variable number of patches;
  Tschannen et al., "SigLIP 2", 2025, sec. 2.4). ``backbone_config`` holds keyword arguments of the
  library's config class (``text_config``/``vision_config`` dicts, ``projection_dim``, ...); left empty it
  means the library's defaults.
* ``library="open_clip"``: ``arch`` is an open_clip model name (``"ViT-B-32-quickgelu"``) and
  ``backbone_config`` overrides entries of its ``model_cfg`` (``embed_dim``, ``vision_cfg``, ``text_cfg``).

Real weights come from ``backbone_path``: a directory written by ``save_pretrained`` (transformers), a
directory written by open_clip's ``save_for_hf`` (``open_clip_config.json`` + weights), or an open_clip
checkpoint file. The path is read at construction only: the architecture found there is written back
into ``backbone_config`` and ``backbone_path`` is cleared in the model's config, so a model saved with
:func:`~perceptiq.models.save_model` is self-contained.

Tokenizers (``tokenizer=``): ``"clip_bpe"`` is open_clip's ``SimpleTokenizer``, whose BPE vocabulary
(the OpenAI CLIP one, 49408 ids) ships inside the open_clip package; ``"hf"`` is ``AutoTokenizer`` read
from ``tokenizer_path`` (default: ``backbone_path``); ``"words"`` is a word-level tokenizer over
``tokenizer_vocab`` built with the ``tokenizers`` library (tiny test models); ``"auto"`` picks
``clip_bpe`` for a CLIP text tower with the 49408-id vocabulary and ``hf`` otherwise. Texts are padded
to the tower's context length (``padding="max_length"``, as SigLIP was trained) and truncated.

Images enter as (B, 3, H, W) in [0, 1]. Fixed-size towers resize them (``resize="resize_crop"``:
shorter side to the tower's size, bicubic, centre crop, as the CLIP processor; ``"squash"``: both sides
to the tower's size) and normalise with ``mean``/``std`` (default: OpenAI CLIP statistics for CLIP,
0.5/0.5 for SigLIP). NaFlex towers resize each batch to a whole number of patches, at most
``max_num_patches``, keeping the aspect ratio (bilinear, antialiased, as ``Siglip2ImageProcessor``).
"""

from __future__ import annotations

import abc
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.patches import budget_scale
from perceptiq.models._base import ModelConfig, WeightsError

__all__ = [
    "ImageTextConfig",
    "ImageTextBackbone",
    "TextTokenizer",
    "build_image_text",
    "build_tokenizer",
    "naflex_grid",
    "patchify",
    "resize_crop",
    "word_tokenizer",
    "word_vocabulary",
    "WORD_SPECIALS",
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
]

Library = Literal["transformers", "open_clip"]
TokenizerKind = Literal["auto", "clip_bpe", "hf", "words"]
ResizeMode = Literal["resize_crop", "squash"]

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
CLIP_BPE_VOCAB_SIZE = 49408
WORD_SPECIALS = ("<pad>", "<unk>", "<bos>")  # ids 0, 1, 2; "<eos>" is the last id (open_clip pools at argmax)
_HF_CLASSES = {
    "clip": ("CLIPConfig", "CLIPModel"),
    "siglip": ("SiglipConfig", "SiglipModel"),
    "siglip2": ("Siglip2Config", "Siglip2Model"),
}


@dataclass
class ImageTextConfig(ModelConfig):
    """Backbone fields shared by the image-text families (see the module docstring).

    Attributes:
        library: ``"transformers"`` or ``"open_clip"``.
        arch: transformers architecture (``clip``, ``siglip``, ``siglip2``) or open_clip model name.
        backbone_config: architecture keyword arguments (library config class or open_clip overrides).
        backbone_path: local weights written by the backbone library (read at construction only).
        tokenizer: ``auto``, ``clip_bpe``, ``hf`` or ``words``.
        tokenizer_path: directory of a transformers tokenizer (``hf``).
        tokenizer_vocab: words of the ``words`` tokenizer.
        mean, std: input normalisation; empty = the tower's default.
        resize: fixed-size towers: ``resize_crop`` (CLIP processor) or ``squash``.
        max_num_patches: NaFlex patch budget (SigLIP 2).
        train_logit_scale: let the logit scale train (LIQE and SR-IQA freeze it).
    """

    library: Library = "transformers"
    arch: str = "clip"
    backbone_config: dict[str, Any] = field(default_factory=dict)
    backbone_path: str | None = None
    tokenizer: TokenizerKind = "auto"
    tokenizer_path: str | None = None
    tokenizer_vocab: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    resize: ResizeMode = "resize_crop"
    max_num_patches: int = 256
    train_logit_scale: bool = False


def naflex_grid(
    height: int, width: int, patch_size: int, max_num_patches: int, *, allow_upscale: bool = True
) -> tuple[int, int]:
    """Patch rows and columns of the NaFlex resize of a ``height x width`` image.

    The largest scale ``s`` with ``ceil(height s / p) * ceil(width s / p) <= max_num_patches``
    (:func:`~perceptiq.functional.patches.budget_scale`, upscaling allowed as in
    ``Siglip2ImageProcessor``) gives ``rows = ceil(height s / p)``, ``cols = ceil(width s / p)``, each
    at least 1; the image is then resized to ``(rows p, cols p)``.

    Example:
        >>> naflex_grid(1080, 1920, 16, 256)
        (12, 21)
    """
    s = budget_scale(height, width, patch_size, max_num_patches, allow_upscale=allow_upscale)
    # h s / p is a whole number at the optimum; the tolerance keeps float error from adding a patch
    rows = max(1, math.ceil(height * s / patch_size - 1e-9))
    cols = max(1, math.ceil(width * s / patch_size - 1e-9))
    return rows, cols


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W), H and W multiples of ``p`` -> (B, (H/p)(W/p), p*p*C) NaFlex patch sequences.

    Patches are taken row by row; each is flattened in (row, column, channel) order, the layout of
    ``Siglip2ImageProcessor``.
    """
    b, c, h, w = images.shape
    p = patch_size
    if h % p or w % p:
        raise InputError(f"image size {h}x{w} is not a multiple of the patch size {p}")
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, (h // p) * (w // p), p * p * c)


def resize_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize (B, C, H, W) in [0, 1] to cover ``size`` (bicubic, antialiased, clamped), then centre-crop.

    For a square ``size`` this is the CLIP processor: shorter side to the size, centre crop.
    """
    h, w = images.shape[-2:]
    th, tw = size
    if (h, w) == (th, tw):
        return images
    s = max(th / h, tw / w)
    rh, rw = max(th, math.floor(h * s + 0.5)), max(tw, math.floor(w * s + 0.5))
    x = F.interpolate(images, size=(rh, rw), mode="bicubic", align_corners=False, antialias=True)
    top, left = (rh - th) // 2, (rw - tw) // 2
    return x[..., top : top + th, left : left + tw].clamp(0.0, 1.0)


def _resize(images: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(images.shape[-2:]) == size:
        return images
    return F.interpolate(images, size=size, mode=mode, align_corners=False, antialias=True).clamp(0.0, 1.0)


def word_vocabulary(texts: list[str]) -> tuple[str, ...]:
    """Sorted distinct lower-case words and punctuation runs of ``texts`` (the ``words`` split)."""
    from tokenizers import pre_tokenizers

    split = pre_tokenizers.Whitespace()
    return tuple(sorted({w for t in texts for w, _ in split.pre_tokenize_str(t.lower())}))


def word_tokenizer(vocab: tuple[str, ...] | list[str]) -> Any:
    """A ``PreTrainedTokenizerFast`` over ``vocab``: ids ``<pad>`` 0, ``<unk>`` 1, ``<bos>`` 2, the words
    from 3 in the given order, ``<eos>`` last; lower-cases, splits on whitespace and punctuation, and
    wraps each text as ``<bos> ... <eos>``.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = [w for w in dict.fromkeys(vocab) if w not in (*WORD_SPECIALS, "<eos>")]
    ids = {tok: i for i, tok in enumerate([*WORD_SPECIALS, *words, "<eos>"])}
    eos = len(ids) - 1
    tok = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>", eos_token="<eos>"
    )


class TextTokenizer:
    """Texts -> (ids, attention mask), both (N, context_length) int64, padded and truncated."""

    def __init__(self, kind: str, tokenizer: Any, context_length: int) -> None:
        self.kind = kind
        self.tokenizer = tokenizer
        self.context_length = context_length

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise InputError(f"texts must be a list of strings, got {type(texts).__name__}")
        n = self.context_length
        if self.kind == "clip_bpe":
            ids = self.tokenizer(list(texts)).long()
            eot = (ids == self.tokenizer.eot_token_id).int().argmax(dim=1)
            mask = (torch.arange(n)[None, :] <= eot[:, None]).long()
            return ids, mask
        enc = self.tokenizer(
            list(texts), padding="max_length", max_length=n, truncation=True, return_tensors="pt"
        )
        ids = enc["input_ids"].long()
        mask = enc["attention_mask"].long() if "attention_mask" in enc else torch.ones_like(ids)
        return ids, mask


class ImageTextBackbone(nn.Module, metaclass=abc.ABCMeta):
    """Image and text towers with a shared embedding space (see the module docstring).

    Attributes:
        context_length: text length the tower takes (prompts are padded to it).
        embed_dim: width of the shared image-text embedding.
        naflex: True when the image tower takes any aspect ratio (SigLIP 2 NaFlex).
        image_size: (height, width) of fixed-size towers; None for NaFlex.
        supports_context: True when learnable prompt context (CoOp) can be inserted in the text tower.
        model: the wrapped transformers or open_clip model; both libraries keep the contrastive
            log-scale in its ``logit_scale`` and SigLIP's bias in its ``logit_bias``.
    """

    model: nn.Module
    context_length: int
    embed_dim: int
    naflex: bool = False
    image_size: tuple[int, int] | None = None
    supports_context: bool = False

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], resize: str) -> None:
        super().__init__()
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise InputError(f"mean and std need 3 values each (std > 0), got {mean!r} and {std!r}")
        self.resize_mode = resize
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def prepare_fixed(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the tower's size (``resize`` mode) and normalise."""
        assert self.image_size is not None
        if self.resize_mode == "resize_crop":
            x = resize_crop(images, self.image_size)
        elif self.resize_mode == "squash":
            x = _resize(images, self.image_size, "bicubic")
        else:
            raise InputError(f"resize must be 'resize_crop' or 'squash', got {self.resize_mode!r}")
        return (x - self.mean) / self.std

    @abc.abstractmethod
    def encode_image(self, images: torch.Tensor, max_num_patches: int | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, D) image embeddings (not normalised)."""

    @abc.abstractmethod
    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask (N, L) -> (N, D) text embeddings (not normalised)."""

    def encode_text_with_context(
        self, ids: torch.Tensor, mask: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """Text embeddings with learnable context vectors (n_ctx, width) inserted after the first token."""
        raise InputError(f"{type(self).__name__} does not support learnable prompt context")

    def logit_scale_parameter(self) -> nn.Parameter:
        """The log-scale parameter of the contrastive logits (``logit_scale`` of the library model)."""
        return self.model.logit_scale

    def logit_scale(self) -> torch.Tensor:
        """exp(log-scale): the factor on cosine similarities (scalar tensor)."""
        return self.logit_scale_parameter().exp().reshape(())

    def logit_bias(self) -> torch.Tensor | None:
        """SigLIP's logit bias (scalar tensor; ``logit_bias`` of the library model), None for CLIP."""
        bias = getattr(self.model, "logit_bias", None)
        return None if bias is None else bias.reshape(())


class HFImageText(ImageTextBackbone):
    """A transformers ``CLIPModel``, ``SiglipModel`` or ``Siglip2Model`` (NaFlex)."""

    def __init__(self, model: nn.Module, arch: str, config: ImageTextConfig) -> None:
        default_mean, default_std = (
            (OPENAI_CLIP_MEAN, OPENAI_CLIP_STD) if arch == "clip" else (SIGLIP_MEAN, SIGLIP_STD)
        )
        super().__init__(tuple(config.mean) or default_mean, tuple(config.std) or default_std, config.resize)
        self.model = model
        self.arch = arch
        vision, text = model.config.vision_config, model.config.text_config
        self.patch_size = int(vision.patch_size)
        self.naflex = arch == "siglip2"
        self.image_size = None if self.naflex else (int(vision.image_size), int(vision.image_size))
        self.context_length = int(text.max_position_embeddings)
        self.embed_dim = int(getattr(model.config, "projection_dim", 0) or vision.hidden_size)
        self.max_num_patches = config.max_num_patches
        self.supports_context = arch == "clip"
        self.eos_token_id = text.eos_token_id

    def encode_image(self, images: torch.Tensor, max_num_patches: int | None = None) -> torch.Tensor:
        if not self.naflex:
            return self.model.get_image_features(pixel_values=self.prepare_fixed(images)).pooler_output
        p = self.patch_size
        rows, cols = naflex_grid(
            images.shape[-2], images.shape[-1], p, max_num_patches or self.max_num_patches
        )
        x = (_resize(images, (rows * p, cols * p), "bilinear") - self.mean) / self.std
        pixels = patchify(x, p)
        b = pixels.shape[0]
        mask = torch.ones(b, rows * cols, dtype=torch.int32, device=pixels.device)
        shapes = torch.tensor([[rows, cols]] * b, dtype=torch.long, device=pixels.device)
        out = self.model.get_image_features(
            pixel_values=pixels, pixel_attention_mask=mask, spatial_shapes=shapes
        )
        return out.pooler_output

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_text_features(input_ids=ids, attention_mask=mask).pooler_output

    def encode_text_with_context(
        self, ids: torch.Tensor, mask: torch.Tensor, context: torch.Tensor
    ) -> torch.Tensor:
        """CoOp (Zhou et al., IJCV 2022): ``[BOS] [V_1..V_M] tokens... [EOS]``, pooled at the shifted EOS.

        The sequence keeps the tower's length: the last M (padding) positions are dropped.
        """
        if not self.supports_context:
            return super().encode_text_with_context(ids, mask, context)
        from transformers.masking_utils import create_causal_mask

        text_model = self.model.text_model
        n_ctx, length = context.shape[0], ids.shape[1]
        if self.eos_token_id == 2:  # transformers' legacy CLIP configs pool at the largest id (the EOS)
            eos = ids.argmax(dim=-1)
        else:
            eos = (ids == self.eos_token_id).int().argmax(dim=-1)
        if int(eos.max()) + n_ctx >= length:
            raise InputError(
                f"a prompt of {int(eos.max()) + 1} tokens plus {n_ctx} context vectors exceeds {length}"
            )
        tokens = text_model.embeddings.token_embedding(ids)
        ctx = context.to(tokens.dtype).unsqueeze(0).expand(ids.shape[0], -1, -1)
        x = torch.cat([tokens[:, :1], ctx, tokens[:, 1 : length - n_ctx]], dim=1)
        m = torch.cat([mask[:, :1], torch.ones_like(mask[:, :n_ctx]), mask[:, 1 : length - n_ctx]], dim=1)
        hidden = text_model.embeddings(inputs_embeds=x)
        causal = create_causal_mask(
            config=text_model.config, inputs_embeds=hidden, attention_mask=m, past_key_values=None
        )
        hidden = text_model.encoder(
            inputs_embeds=hidden, attention_mask=causal, is_causal=True
        ).last_hidden_state
        hidden = text_model.final_layer_norm(hidden)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), eos + n_ctx]
        return self.model.text_projection(pooled)


class OpenClipImageText(ImageTextBackbone):
    """An open_clip ``CLIP``/``CustomTextCLIP`` model (fixed image size)."""

    def __init__(self, model: nn.Module, config: ImageTextConfig) -> None:
        pre = getattr(model.visual, "preprocess_cfg", None) or {}
        mean = tuple(config.mean) or tuple(pre.get("mean", OPENAI_CLIP_MEAN))
        std = tuple(config.std) or tuple(pre.get("std", OPENAI_CLIP_STD))
        super().__init__(mean, std, config.resize)
        self.model = model
        size = model.visual.image_size
        self.image_size = (
            (int(size[0]), int(size[1])) if isinstance(size, tuple | list) else (int(size), int(size))
        )
        self.context_length = int(model.context_length)
        width = getattr(model.visual, "output_dim", None)
        if width is None:  # timm image towers do not record it
            with torch.no_grad():
                width = model.encode_image(torch.zeros(1, 3, *self.image_size)).shape[-1]
        self.embed_dim = int(width)

    def encode_image(self, images: torch.Tensor, max_num_patches: int | None = None) -> torch.Tensor:
        return self.model.encode_image(self.prepare_fixed(images))

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(ids)


def _hf_classes(arch: str) -> tuple[Any, Any]:
    if arch not in _HF_CLASSES:
        raise InputError(f"transformers arch must be one of {sorted(_HF_CLASSES)}, got {arch!r}")
    try:
        import transformers
    except ImportError as err:
        raise InputError("transformers backbones need `pip install transformers`") from err
    config_name, model_name = _HF_CLASSES[arch]
    return getattr(transformers, config_name), getattr(transformers, model_name)


def _build_transformers(config: ImageTextConfig) -> tuple[nn.Module, dict[str, Any]]:
    config_cls, model_cls = _hf_classes(config.arch)
    if config.backbone_path is None:
        return model_cls(config_cls(**config.backbone_config)), {}
    path = Path(config.backbone_path)
    if not (path / "config.json").exists():
        raise WeightsError(
            f"{path}: not a directory written by transformers save_pretrained (no config.json)"
        )
    try:
        model = model_cls.from_pretrained(str(path), dtype=torch.float32)
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path}: cannot load a {model_cls.__name__} ({err})") from err
    return model, {"backbone_config": model.config.to_dict()}


def _build_open_clip(config: ImageTextConfig) -> tuple[nn.Module, dict[str, Any]]:
    try:
        import open_clip
    except ImportError as err:
        raise InputError("open_clip backbones need `pip install open_clip_torch`") from err
    if config.arch not in open_clip.list_models():
        raise InputError(f"unknown open_clip model {config.arch!r}; see open_clip.list_models()")
    overrides = dict(config.backbone_config)
    if config.backbone_path is None:
        return open_clip.create_model(config.arch, pretrained=None, **overrides), {}
    path = Path(config.backbone_path)
    if path.is_dir():
        cfg_file = path / "open_clip_config.json"
        if not cfg_file.exists():
            raise WeightsError(
                f"{path}: not a directory written by open_clip save_for_hf (no {cfg_file.name})"
            )
        model_cfg = json.loads(cfg_file.read_text(encoding="utf-8"))["model_cfg"]
        model = open_clip.create_model(f"local-dir:{path}")
        return model, {"backbone_config": model_cfg}
    if not path.is_file():
        raise WeightsError(f"{path}: open_clip backbone weights not found")
    try:
        model = open_clip.create_model(config.arch, pretrained=str(path), **overrides)
    except RuntimeError as err:
        raise WeightsError(f"{path}: does not fit open_clip model {config.arch!r} ({err})") from err
    return model, {}


def build_image_text(config: ImageTextConfig) -> tuple[ImageTextBackbone, dict[str, Any]]:
    """The backbone described by ``config`` and the config changes that record it.

    Returns:
        (backbone, updates): ``updates`` sets ``backbone_config`` to the architecture read from
        ``backbone_path`` and clears ``backbone_path`` (the weights now live in the model's state);
        for an ``hf`` tokenizer read from ``backbone_path`` it keeps that directory as ``tokenizer_path``.
    """
    if config.library == "transformers":
        model, updates = _build_transformers(config)
        backbone: ImageTextBackbone = HFImageText(model, config.arch, config)
    elif config.library == "open_clip":
        model, updates = _build_open_clip(config)
        backbone = OpenClipImageText(model, config)
    else:
        raise InputError(f"library must be 'transformers' or 'open_clip', got {config.library!r}")
    if config.backbone_path is not None:
        updates["backbone_path"] = None
        if config.tokenizer_path is None and _tokenizer_kind(config, backbone) == "hf":
            updates["tokenizer_path"] = config.backbone_path
    return backbone, updates


def _tokenizer_kind(config: ImageTextConfig, backbone: ImageTextBackbone) -> str:
    if config.tokenizer != "auto":
        return config.tokenizer
    if isinstance(backbone, HFImageText):
        is_clip_bpe = (
            backbone.arch == "clip" and backbone.model.config.text_config.vocab_size == CLIP_BPE_VOCAB_SIZE
        )
        return "clip_bpe" if is_clip_bpe else "hf"
    return "clip_bpe" if getattr(backbone.model, "vocab_size", 0) == CLIP_BPE_VOCAB_SIZE else "hf"


def build_tokenizer(config: ImageTextConfig, backbone: ImageTextBackbone) -> TextTokenizer | None:
    """The tokenizer of ``config`` for ``backbone``, or None when an ``hf`` tokenizer has no directory."""
    kind = _tokenizer_kind(config, backbone)
    length = backbone.context_length
    if kind == "clip_bpe":
        from open_clip.tokenizer import SimpleTokenizer

        return TextTokenizer(kind, SimpleTokenizer(context_length=length), length)
    if kind == "words":
        if not config.tokenizer_vocab:
            raise InputError("tokenizer 'words' needs tokenizer_vocab (a list of words)")
        return TextTokenizer(kind, word_tokenizer(config.tokenizer_vocab), length)
    if kind != "hf":
        raise InputError(f"tokenizer must be one of auto, clip_bpe, hf, words; got {kind!r}")
    path = config.tokenizer_path or config.backbone_path
    if path is None:
        return None
    from transformers import AutoTokenizer

    try:
        return TextTokenizer(kind, AutoTokenizer.from_pretrained(str(path)), length)
    except (OSError, ValueError) as err:
        raise WeightsError(f"{path}: no transformers tokenizer there ({err})") from err
