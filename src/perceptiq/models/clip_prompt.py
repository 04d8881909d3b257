"""Prompt-based quality from image-text models: CLIP, SigLIP and SigLIP 2 NaFlex (Li et al., ISRG-Q report,
2025 and Chen et al., Learning from Model Rankings, 2025).

Score (Li et al., ISRG-Q report, 2025, QA-Veteran, sec. 4.3; Chen et al., Learning from Model Rankings, 2025,
sec. II-B; reference code SR-IQA-SMC25 rectifier.py, train.py and LIQE train_unique_clip_weight.py): the image
embedding is compared with the text embeddings of five prompts ``"a photo with {c} quality"``,
c in (bad, poor, fair, good, perfect); logits = logit_scale * cosine similarity, softmax over the
prompts gives p(c|x), and the score is the expected level ``q(x) = sum_c p(c|x) * c`` with c = 1..5.
Range [1, 5], higher = better. The level weights are configurable (Q-Align's README weights
[5, 4, 3, 2, 1] over [excellent .. bad], or its scorer's [1, 0.75, 0.5, 0.25, 0], Q-Align scorer.py, are the
same rule).

Options:

* ``prompt_template``: ``"a photo with {} quality"`` (LIQE, SR-IQA ``train.py``, QA-Veteran; default)
  or ``"a photo of {} quality"`` (SR-IQA ``demo.py``, which differs from its ``train.py`` here).
* ``prompt_set="liqe_joint"``: LIQE's 495 joint prompts
  ``"a photo of a {scene} with {distortion} artifacts, which is of {quality} quality"``
  (index q*99 + s*11 + d); softmax over all of them, then the quality marginal (LIQE
  train_unique_clip_weight.py).
* ``liqe_patches``: LIQE's test-time patches (LIQE train_unique_clip_weight.py): resize so that the shorter
  side is at most
  768 when both sides reach 768, cut a grid of tower-size patches with stride 32 (48 when a side is at
  least 1024), keep the 15 patches ``i * (N // 15)`` (released code; with N < 15 every kept patch is
  patch 0) or ``floor(i * N / 15)`` (``liqe_selection="spread"``, ours), and **average the logits over
  patches before the softmax** (``patch_aggregation="logits"``, released code, default) or average the
  probabilities (``"probabilities"``, equal to averaging patch scores). The patches are cut inside
  ``forward``, so the model's input policy is ``"full"``; an input policy of random patches instead
  averages patch *scores*. Inputs smaller than a patch are first enlarged to the patch size (ours).
* ``n_context``: CoOp learnable context (Zhou et al., "Learning to Prompt for Vision-Language Models",
  IJCV 2022): M vectors of the text width inserted after the start token of every prompt, shared by
  the prompts, initialised N(0, 0.02^2); transformers CLIP text towers only.
* SigLIP 2 NaFlex (QA-Veteran): the image keeps its aspect ratio and resolution up to a patch budget
  (``max_num_patches``; 4624 at test, training draws from {4624, 5184, 5776}: pass
  ``max_num_patches=`` to ``forward``). The variant's input policy ``"resize_budget"`` bounds the
  image first; ``forward`` then fits each side to a whole number of patches.

Prompt token ids are stored in the model's state (buffers ``prompt_ids``/``prompt_mask``), so saved
weights need no tokenizer files. Backbones, tokenizers and weight paths: see
:mod:`perceptiq.models._image_text`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from perceptiq.errors import InputError
from perceptiq.functional.patches import Box, InputPolicy, crop_boxes
from perceptiq.models._base import QualityModel, WeightsError, register_family, register_model
from perceptiq.models._image_text import ImageTextConfig, build_image_text, build_tokenizer

__all__ = [
    "ClipPromptConfig",
    "ClipPromptModel",
    "QUALITY_WORDS",
    "PROMPT_TEMPLATE",
    "PROMPT_TEMPLATE_DEMO",
    "LIQE_SCENES",
    "LIQE_DISTORTIONS",
    "quality_prompts",
    "liqe_joint_prompts",
    "similarity_logits",
    "level_probabilities",
    "expected_level",
    "patch_level_score",
    "liqe_resize_size",
    "liqe_patch_boxes",
]

QUALITY_WORDS = ("bad", "poor", "fair", "good", "perfect")
PROMPT_TEMPLATE = "a photo with {} quality"
PROMPT_TEMPLATE_DEMO = "a photo of {} quality"
LIQE_JOINT_TEMPLATE = "a photo of a {scene} with {distortion} artifacts, which is of {quality} quality"
LIQE_SCENES = (
    "animal",
    "cityscape",
    "human",
    "indoor",
    "landscape",
    "night",
    "plant",
    "still_life",
    "others",
)
LIQE_DISTORTIONS = (
    "jpeg2000 compression",
    "jpeg compression",
    "noise",
    "blur",
    "color",
    "contrast",
    "overexposure",
    "underexposure",
    "spatial",
    "quantization",
    "other",
)


def quality_prompts(template: str = PROMPT_TEMPLATE, words: tuple[str, ...] = QUALITY_WORDS) -> list[str]:
    """The level prompts, one per quality word, in level order (bad = level 1).

    Example:
        >>> quality_prompts()[0], quality_prompts()[-1]
        ('a photo with bad quality', 'a photo with perfect quality')
    """
    if template.count("{}") != 1:
        raise InputError(f"prompt template must contain one '{{}}', got {template!r}")
    return [template.format(w) for w in words]


def liqe_joint_prompts(
    words: tuple[str, ...] = QUALITY_WORDS,
    scenes: tuple[str, ...] = LIQE_SCENES,
    distortions: tuple[str, ...] = LIQE_DISTORTIONS,
) -> tuple[list[str], list[int]]:
    """LIQE's joint prompts in ``product(qualities, scenes, distortions)`` order, and their level indices."""
    prompts, levels = [], []
    for (q, quality), scene, distortion in itertools.product(enumerate(words), scenes, distortions):
        prompts.append(LIQE_JOINT_TEMPLATE.format(scene=scene, distortion=distortion, quality=quality))
        levels.append(q)
    return prompts, levels


def similarity_logits(
    image_embeds: torch.Tensor, text_embeds: torch.Tensor, scale: torch.Tensor | float
) -> torch.Tensor:
    """``scale * cos(image, text)``: (..., D) images and (P, D) texts -> (..., P) logits."""
    return scale * F.normalize(image_embeds, dim=-1) @ F.normalize(text_embeds, dim=-1).transpose(0, 1)


def level_probabilities(logits: torch.Tensor, prompt_levels: torch.Tensor, n_levels: int) -> torch.Tensor:
    """Softmax over all prompts (last axis), then the sum over the prompts of each level: (..., n_levels)."""
    probs = torch.softmax(logits, dim=-1)
    out = probs.new_zeros((*probs.shape[:-1], n_levels))
    return out.index_add(-1, prompt_levels.to(probs.device), probs)


def expected_level(probs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``sum_c p_c * w_c`` over the last axis (weights 1..5: the expected quality level)."""
    return (probs * weights.to(probs)).sum(dim=-1)


def patch_level_score(
    logits: torch.Tensor,
    prompt_levels: torch.Tensor,
    weights: torch.Tensor,
    aggregation: Literal["logits", "probabilities"] = "logits",
) -> torch.Tensor:
    """Scores (B,) from per-patch logits (n_patches, B, P).

    ``"logits"`` averages the logits over patches and then applies the softmax (LIQE released code);
    ``"probabilities"`` applies the softmax per patch and averages the level probabilities.
    """
    n_levels = weights.shape[0]
    if aggregation == "logits":
        probs = level_probabilities(logits.mean(dim=0), prompt_levels, n_levels)
    elif aggregation == "probabilities":
        probs = level_probabilities(logits, prompt_levels, n_levels).mean(dim=0)
    else:
        raise InputError(f"patch_aggregation must be 'logits' or 'probabilities', got {aggregation!r}")
    return expected_level(probs, weights)


def liqe_resize_size(height: int, width: int, target: int = 768) -> tuple[int, int]:
    """LIQE's AdaptiveResize: unchanged if a side is below ``target``, else shorter side to ``target``
    and longer side to ``int(target * long / short)``.

    Example:
        >>> liqe_resize_size(1536, 2048)
        (768, 1024)
    """
    if height < target or width < target:
        return height, width
    if height <= width:
        return target, int(target * width / height)
    return int(target * height / width), target


def liqe_patch_boxes(
    height: int,
    width: int,
    patch: int = 224,
    count: int = 15,
    stride: int = 32,
    large_stride: int = 48,
    large_side: int = 1024,
    selection: Literal["released", "spread"] = "released",
) -> list[Box]:
    """LIQE's test patches: a ``patch`` grid (unfold order, row-major) with ``stride`` (``large_stride``
    when a side is at least ``large_side``), of which ``count`` are kept.

    ``"released"`` keeps indices ``i * (N // count)`` (all 0 when N < count); ``"spread"`` keeps
    ``floor(i * N / count)``.
    """
    if height < patch or width < patch:
        raise InputError(f"image {height}x{width} is smaller than the {patch}x{patch} patch")
    if min(patch, count, stride, large_stride) < 1:
        raise InputError("patch, count, stride and large_stride must be >= 1")
    step = large_stride if max(height, width) >= large_side else stride
    rows, cols = (height - patch) // step + 1, (width - patch) // step + 1
    n = rows * cols
    if selection == "released":
        indices = [i * (n // count) for i in range(count)]
    elif selection == "spread":
        indices = [i * n // count for i in range(count)]
    else:
        raise InputError(f"liqe_selection must be 'released' or 'spread', got {selection!r}")
    return [Box((k // cols) * step, (k % cols) * step, patch, patch) for k in indices]


@dataclass
class ClipPromptConfig(ImageTextConfig):
    """Configuration of :class:`ClipPromptModel` (backbone fields: :class:`ImageTextConfig`).

    Attributes:
        prompt_set: ``"quality"`` (one prompt per level) or ``"liqe_joint"`` (495 prompts).
        prompt_template: template of the quality prompts.
        quality_words: level words, worst first.
        level_weights: value of each level in the expected-level score.
        n_context: number of CoOp learnable context vectors (0 = fixed prompts).
        context_init_std: standard deviation of their initialisation.
        liqe_patches: score LIQE's test patches inside ``forward``.
        patch_aggregation: ``"logits"`` (average logits, then softmax) or ``"probabilities"``.
        liqe_selection: ``"released"`` or ``"spread"`` patch indices.
        liqe_num_patches, liqe_stride, liqe_large_stride, liqe_large_side: patch grid rule.
        liqe_resize: AdaptiveResize target (0 = off).
    """

    family = "clip_prompt"
    prompt_set: Literal["quality", "liqe_joint"] = "quality"
    prompt_template: str = PROMPT_TEMPLATE
    quality_words: tuple[str, ...] = QUALITY_WORDS
    level_weights: tuple[float, ...] = (1.0, 2.0, 3.0, 4.0, 5.0)
    n_context: int = 0
    context_init_std: float = 0.02
    liqe_patches: bool = False
    patch_aggregation: Literal["logits", "probabilities"] = "logits"
    liqe_selection: Literal["released", "spread"] = "released"
    liqe_num_patches: int = 15
    liqe_stride: int = 32
    liqe_large_stride: int = 48
    liqe_large_side: int = 1024
    liqe_resize: int = 768


def _check_config(config: ClipPromptConfig) -> None:
    if len(config.level_weights) != len(config.quality_words) or not config.quality_words:
        raise InputError(
            f"level_weights ({len(config.level_weights)}) and quality_words ({len(config.quality_words)}) "
            "must have the same non-zero length"
        )
    if config.prompt_set not in ("quality", "liqe_joint"):
        raise InputError(f"prompt_set must be 'quality' or 'liqe_joint', got {config.prompt_set!r}")
    if config.patch_aggregation not in ("logits", "probabilities"):
        raise InputError(
            f"patch_aggregation must be 'logits' or 'probabilities', got {config.patch_aggregation!r}"
        )
    if config.n_context < 0 or config.liqe_resize < 0:
        raise InputError("n_context and liqe_resize must be >= 0")


@register_family("clip_prompt")
class ClipPromptModel(QualityModel):
    """Image-text backbone + level prompts -> expected quality level (see the module docstring)."""

    config_class = ClipPromptConfig
    score_range = (1.0, 5.0)

    def __init__(self, config: ClipPromptConfig) -> None:
        _check_config(config)
        backbone, updates = build_image_text(config)
        zero_shot = config.backbone_path is not None and config.n_context == 0  # nothing left random
        config = config.replace(**updates) if updates else config
        super().__init__(config)
        self.backbone = backbone
        self.has_trained_weights = zero_shot
        backbone.logit_scale_parameter().requires_grad_(config.train_logit_scale)
        if config.liqe_patches and backbone.naflex:
            raise InputError("liqe_patches needs a fixed-size image tower; NaFlex takes the whole image")
        prompts, levels = self.prompts_and_levels(config)
        tokenizer = build_tokenizer(config, backbone)
        if tokenizer is None:  # filled by load_weights; forward refuses the placeholder
            ids = torch.full((len(prompts), backbone.context_length), -1, dtype=torch.long)
            mask = torch.zeros_like(ids)
        else:
            ids, mask = tokenizer(prompts)
        self.register_buffer("prompt_ids", ids)
        self.register_buffer("prompt_mask", mask)
        self.register_buffer("prompt_levels", torch.tensor(levels, dtype=torch.long), persistent=False)
        self.register_buffer("level_weights", torch.tensor(config.level_weights), persistent=False)
        self.context: nn.Parameter | None = None
        if config.n_context > 0:
            if not backbone.supports_context:
                raise InputError("n_context > 0 needs a transformers CLIP text tower (arch 'clip')")
            width = backbone.model.config.text_config.hidden_size
            self.context = nn.Parameter(torch.randn(config.n_context, width) * config.context_init_std)

    @staticmethod
    def prompts_and_levels(config: ClipPromptConfig) -> tuple[list[str], list[int]]:
        """The prompt strings of ``config`` and the level index of each."""
        if config.prompt_set == "liqe_joint":
            return liqe_joint_prompts(config.quality_words)
        return quality_prompts(config.prompt_template, config.quality_words), list(
            range(len(config.quality_words))
        )

    @property
    def prompts(self) -> list[str]:
        return self.prompts_and_levels(self.config)[0]

    @property
    def num_features(self) -> int:
        """Width of :meth:`forward_features`."""
        return self.backbone.embed_dim

    def text_embeddings(self) -> torch.Tensor:
        """(P, D) embeddings of the prompts (with the learnable context, if any)."""
        if bool((self.prompt_ids < 0).any()):
            raise WeightsError(
                "prompt token ids are unknown: give tokenizer_path (or backbone_path) for this text tower, "
                "or load perceptiq weights, which hold them"
            )
        if self.context is None:
            return self.backbone.encode_text(self.prompt_ids, self.prompt_mask)
        return self.backbone.encode_text_with_context(self.prompt_ids, self.prompt_mask, self.context)

    def _patches(self, images: torch.Tensor) -> tuple[torch.Tensor, int]:
        cfg = self.config
        assert self.backbone.image_size is not None
        patch = self.backbone.image_size[0]
        h, w = images.shape[-2:]
        if cfg.liqe_resize:
            h, w = liqe_resize_size(h, w, cfg.liqe_resize)
        if min(h, w) < patch:
            s = patch / min(h, w)
            h, w = max(patch, math.ceil(h * s)), max(patch, math.ceil(w * s))
        x = images
        if (h, w) != tuple(images.shape[-2:]):
            x = F.interpolate(images, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        boxes = liqe_patch_boxes(
            h,
            w,
            patch=patch,
            count=cfg.liqe_num_patches,
            stride=cfg.liqe_stride,
            large_stride=cfg.liqe_large_stride,
            large_side=cfg.liqe_large_side,
            selection=cfg.liqe_selection,
        )
        return crop_boxes(x, boxes), len(boxes)

    def image_embeddings(self, images: torch.Tensor, max_num_patches: int | None = None) -> torch.Tensor:
        """(n_patches, B, D) image embeddings (n_patches = 1 without LIQE patches)."""
        if not self.config.liqe_patches:
            return self.backbone.encode_image(images, max_num_patches)[None]
        crops, n = self._patches(images)
        return self.backbone.encode_image(crops).reshape(n, images.shape[0], -1)

    def logits(self, images: torch.Tensor, max_num_patches: int | None = None) -> torch.Tensor:
        """Per-patch prompt logits (n_patches, B, P) = logit_scale * cosine similarity."""
        return similarity_logits(
            self.image_embeddings(images, max_num_patches),
            self.text_embeddings(),
            self.backbone.logit_scale(),
        )

    def forward_with_features(
        self, images: torch.Tensor, max_num_patches: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores (B,) and image features (B, D) (mean embedding over patches) from one image pass."""
        embeds = self.image_embeddings(images, max_num_patches)
        logits = similarity_logits(embeds, self.text_embeddings(), self.backbone.logit_scale())
        scores = patch_level_score(
            logits, self.prompt_levels, self.level_weights, self.config.patch_aggregation
        )
        return scores, embeds.mean(dim=0)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """Image features (B, D): the image embedding, averaged over LIQE patches when they are on."""
        return self.image_embeddings(images).mean(dim=0)

    def forward(
        self,
        images: torch.Tensor,
        reference: torch.Tensor | None = None,
        *,
        max_num_patches: int | None = None,
    ) -> torch.Tensor:
        return self.forward_with_features(images, max_num_patches)[0]


# Real-size architectures (random init unless backbone_path points at weights saved by the library).
CLIP_VIT_B32 = {
    "projection_dim": 512,
    "text_config": {
        "vocab_size": 49408,
        "hidden_size": 512,
        "intermediate_size": 2048,
        "num_hidden_layers": 12,
        "num_attention_heads": 8,
        "max_position_embeddings": 77,
    },
    "vision_config": {
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "image_size": 224,
        "patch_size": 32,
    },
}
SIGLIP_B16_224 = {
    "text_config": {"vocab_size": 32000, "max_position_embeddings": 64, "pad_token_id": 1, "eos_token_id": 1},
    "vision_config": {"image_size": 224, "patch_size": 16},
}
SIGLIP2_B16_NAFLEX = {
    "text_config": {
        "vocab_size": 256000,
        "max_position_embeddings": 64,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "bos_token_id": 2,
    },
    "vision_config": {"patch_size": 16, "num_patches": 256},
}
NAFLEX_POLICY = InputPolicy(
    mode="resize_budget", patch_size=16, max_patches=4624, allow_upscale=True, interpolation="bilinear"
)


@register_model("clip_prompt_vit_b32")
def clip_prompt_vit_b32() -> ClipPromptConfig:
    """CLIP ViT-B/32, five quality prompts, LIQE test patches (the base model of SR-IQA's rectifier;
    SR-IQA-SMC25 rectifier.py and train.py)."""
    return ClipPromptConfig(arch="clip", backbone_config=CLIP_VIT_B32, liqe_patches=True)


@register_model("clip_prompt_liqe_vit_b32")
def clip_prompt_liqe_vit_b32() -> ClipPromptConfig:
    """LIQE: CLIP ViT-B/32, 495 joint prompts, LIQE test patches, quality marginal."""
    return ClipPromptConfig(
        arch="clip", backbone_config=CLIP_VIT_B32, prompt_set="liqe_joint", liqe_patches=True
    )


@register_model("clip_prompt_vit_b32_coop")
def clip_prompt_vit_b32_coop() -> ClipPromptConfig:
    """CLIP ViT-B/32 with 16 CoOp learnable context vectors before the quality prompts, whole image."""
    return ClipPromptConfig(arch="clip", backbone_config=CLIP_VIT_B32, n_context=16)


@register_model("clip_prompt_openclip_vit_b32")
def clip_prompt_openclip_vit_b32() -> ClipPromptConfig:
    """open_clip ViT-B-32 (QuickGELU, the OpenAI architecture), five prompts, LIQE test patches."""
    return ClipPromptConfig(library="open_clip", arch="ViT-B-32-quickgelu", liqe_patches=True)


@register_model("clip_prompt_siglip_b16")
def clip_prompt_siglip_b16() -> ClipPromptConfig:
    """SigLIP base patch16 224, five prompts, whole image (its tokenizer needs tokenizer_path)."""
    return ClipPromptConfig(arch="siglip", backbone_config=SIGLIP_B16_224)


@register_model("clip_prompt_siglip2_naflex")
def clip_prompt_siglip2_naflex() -> ClipPromptConfig:
    """QA-Veteran: SigLIP 2 base patch16 NaFlex, five prompts, 4624-patch budget (tokenizer_path needed)."""
    return ClipPromptConfig(
        arch="siglip2", backbone_config=SIGLIP2_B16_NAFLEX, max_num_patches=4624, input_policy=NAFLEX_POLICY
    )
