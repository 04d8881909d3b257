"""Text-to-image alignment: an overall score and per-element presence from an image-text model (Han et al.,
NTIRE 2025 T2I QA report).

Han et al., NTIRE 2025 T2I QA report (NTIRE 2025 T2I QA, alignment track on EvalMuse-40K; EvalMuse eval.py):
for a prompt and an
image generated from it, predict an overall alignment score on 1..5 and, for each element the prompt
was split into, whether the element appears in the image. Main = 0.5 ACC + 0.25 (SRCC + PLCC), with the
element predictions binarised as EvalMuse's ``eval.py`` does: 1 if p >= 0.5 else 0.

The baseline FGA-BLIP2 reads both from a BLIP-2 image-text matching head and maps the mean match
probability p to ``4 p + 1`` (EvalMuse fga_blip2.py). This family computes them from a contrastive image-text
model (CLIP, SigLIP, SigLIP 2; :mod:`perceptiq.models._image_text`); the rules are ours:

* Match probability of a text t for image x (``rule=``):

  - ``"contrast"`` (default, any tower): the two-way softmax between t's phrase and its negation,
    ``p = sigmoid(s * (cos(x, T(present(t))) - cos(x, T(absent(t)))))`` with ``present = "a photo of {}"``,
    ``absent = "a photo without {}"`` and s the tower's logit scale;
  - ``"sigmoid"`` (SigLIP towers): SigLIP's own pairwise probability ``p = sigmoid(s cos(x, T(t)) + b)``
    (Zhai et al., "Sigmoid Loss for Language Image Pre-Training", 2023), s and b the tower's logit scale
    and bias.

* Overall = ``4 p + 1`` for t = the whole prompt (FGA-BLIP2's mapping; range [1, 5], higher = better).
* Element probability = p for t = the element text; an EvalMuse element key ``"text (category)"`` is
  reduced to the text before its last ``"("`` (:func:`element_text`, as FGA-BLIP2's ``rpartition``),
  stripped of surrounding spaces. Element label = ``p >= threshold`` (0.5).

``forward(images)`` scores the images against ``default_prompt``; :meth:`T2IAlignmentModel.score_with_text`
takes the prompts and elements. Both are differentiable (train with MSE on the overall score and binary
cross-entropy on the element probabilities, for example).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional.patches import InputPolicy
from perceptiq.models._base import QualityModel, WeightsError, register_family, register_model
from perceptiq.models._image_text import ImageTextConfig, build_image_text, build_tokenizer
from perceptiq.models.clip_prompt import CLIP_VIT_B32, SIGLIP2_B16_NAFLEX

__all__ = [
    "T2IAlignmentConfig",
    "T2IAlignmentModel",
    "AlignmentResult",
    "element_text",
    "contrast_probability",
    "sigmoid_probability",
    "overall_from_match",
    "binarize_elements",
]


def element_text(key: str) -> str:
    """The element text of an EvalMuse element key: everything before the last ``"("``, else the key.

    Example:
        >>> element_text("pig giants (animal)")
        'pig giants '
    """
    return key.rpartition("(")[0] if "(" in key else key


def contrast_probability(
    cos_present: torch.Tensor, cos_absent: torch.Tensor, scale: torch.Tensor | float
) -> torch.Tensor:
    """2-way softmax of ``scale * cos`` between a phrase and its negation, ``sigmoid(scale (c_p - c_a))``."""
    return torch.sigmoid(scale * (cos_present - cos_absent))


def sigmoid_probability(
    cos: torch.Tensor, scale: torch.Tensor | float, bias: torch.Tensor | float
) -> torch.Tensor:
    """SigLIP's pairwise match probability ``sigmoid(scale * cos + bias)``."""
    return torch.sigmoid(scale * cos + bias)


def overall_from_match(p: torch.Tensor) -> torch.Tensor:
    """FGA-BLIP2's overall score ``4 p + 1`` from a match probability (EvalMuse fga_blip2.py)."""
    return 4.0 * p + 1.0


def binarize_elements(probs: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Element labels ``1 if p >= threshold else 0`` (EvalMuse ``eval.py``; 0.5 -> 1), int64."""
    return (probs >= threshold).long()


@dataclass
class AlignmentResult:
    """Output of :meth:`T2IAlignmentModel.score_with_text`.

    Attributes:
        overall: (B,) alignment scores in [1, 5].
        match_probability: (B,) probability that each image matches its whole prompt.
        element_probs: per image, (n_elements,) presence probabilities.
        element_labels: per image, (n_elements,) 0/1 labels (``>= threshold``).
    """

    overall: torch.Tensor
    match_probability: torch.Tensor
    element_probs: list[torch.Tensor]
    element_labels: list[torch.Tensor]


@dataclass
class T2IAlignmentConfig(ImageTextConfig):
    """Configuration of :class:`T2IAlignmentModel` (backbone fields: :class:`ImageTextConfig`).

    Attributes:
        rule: ``"contrast"`` or ``"sigmoid"`` match probability.
        present_template, absent_template: phrases of the contrast rule (one ``{}`` each).
        default_prompt: the text ``forward(images)`` scores against.
        threshold: element binarisation threshold (``>=``).
    """

    family = "t2i_alignment"
    rule: Literal["contrast", "sigmoid"] = "contrast"
    present_template: str = "a photo of {}"
    absent_template: str = "a photo without {}"
    default_prompt: str = "a photo"
    threshold: float = 0.5


def _as_element_lists(elements: list[str] | list[list[str]] | None, batch: int) -> list[list[str]]:
    if elements is None:
        return [[] for _ in range(batch)]
    if all(isinstance(e, str) for e in elements):
        return [list(elements) for _ in range(batch)]  # type: ignore[arg-type]
    if len(elements) != batch or not all(isinstance(e, list | tuple) for e in elements):
        raise InputError(f"elements must be a list of strings or one list of strings per image ({batch})")
    return [list(e) for e in elements]  # type: ignore[arg-type]


@register_family("t2i_alignment")
class T2IAlignmentModel(QualityModel):
    """Image-text tower -> overall alignment (1..5) and element presence (see the module docstring)."""

    config_class = T2IAlignmentConfig
    score_range = (1.0, 5.0)

    def __init__(self, config: T2IAlignmentConfig) -> None:
        if config.rule not in ("contrast", "sigmoid"):
            raise InputError(f"rule must be 'contrast' or 'sigmoid', got {config.rule!r}")
        for name in ("present_template", "absent_template"):
            if getattr(config, name).count("{}") != 1:
                raise InputError(f"{name} must contain one '{{}}', got {getattr(config, name)!r}")
        backbone, updates = build_image_text(config)
        config = config.replace(**updates) if updates else config
        super().__init__(config)
        self.backbone = backbone
        backbone.logit_scale_parameter().requires_grad_(config.train_logit_scale)
        if config.rule == "sigmoid" and backbone.logit_bias() is None:
            raise InputError("rule 'sigmoid' needs a tower with a logit bias (SigLIP); use rule 'contrast'")
        self.tokenizer = build_tokenizer(config, backbone)

    def _text_embeddings(self, texts: list[str]) -> torch.Tensor:
        if self.tokenizer is None:
            raise WeightsError(
                "this text tower needs its tokenizer: set tokenizer_path to a transformers tokenizer"
            )
        ids, mask = self.tokenizer(texts)
        device = self.backbone.logit_scale_parameter().device
        return F.normalize(self.backbone.encode_text(ids.to(device), mask.to(device)), dim=-1)

    def match_probability(
        self, image_embeds: torch.Tensor, texts: list[str], owners: list[int]
    ) -> torch.Tensor:
        """Probabilities that ``texts[k]`` matches image ``owners[k]``; ``image_embeds`` (B, D) normalised."""
        if not texts:
            return image_embeds.new_zeros(0)
        cfg = self.config
        img = image_embeds[torch.tensor(owners, device=image_embeds.device)]
        scale = self.backbone.logit_scale()
        if cfg.rule == "sigmoid":
            cos = (img * self._text_embeddings(texts)).sum(-1)
            return sigmoid_probability(cos, scale, self.backbone.logit_bias())
        phrases = [cfg.present_template.format(t) for t in texts] + [
            cfg.absent_template.format(t) for t in texts
        ]
        emb = self._text_embeddings(phrases)
        n = len(texts)
        return contrast_probability((img * emb[:n]).sum(-1), (img * emb[n:]).sum(-1), scale)

    def score_with_text(
        self,
        images: torch.Tensor,
        prompts: list[str] | str,
        elements: list[str] | list[list[str]] | None = None,
        *,
        max_num_patches: int | None = None,
    ) -> AlignmentResult:
        """Overall alignment and element presence of (B, 3, H, W) images in [0, 1].

        Args:
            images: the generated images.
            prompts: one prompt per image, or one prompt for all.
            elements: element keys or texts (``"pig giants (animal)"`` or ``"pig giants"``): one list shared
                by all images, or one list per image.
            max_num_patches: NaFlex patch budget for this call (SigLIP 2).
        """
        batch = images.shape[0]
        prompt_list = [prompts] * batch if isinstance(prompts, str) else list(prompts)
        if len(prompt_list) != batch:
            raise InputError(f"{len(prompt_list)} prompts for {batch} images")
        element_lists = _as_element_lists(elements, batch)
        image_embeds = F.normalize(self.backbone.encode_image(images, max_num_patches), dim=-1)
        texts, owners = list(prompt_list), list(range(batch))
        for i, keys in enumerate(element_lists):
            texts += [element_text(k).strip() for k in keys]
            owners += [i] * len(keys)
        probs = self.match_probability(image_embeds, texts, owners)
        match, rest = probs[:batch], probs[batch:]
        element_probs = list(torch.split(rest, [len(k) for k in element_lists]))
        labels = [binarize_elements(p.detach(), self.config.threshold) for p in element_probs]
        return AlignmentResult(overall_from_match(match), match, element_probs, labels)

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return self.score_with_text(images, self.config.default_prompt).overall


@register_model("t2i_alignment_clip_vit_b32")
def t2i_alignment_clip_vit_b32() -> T2IAlignmentConfig:
    """CLIP ViT-B/32, contrast rule (phrase vs "a photo without ...")."""
    return T2IAlignmentConfig(arch="clip", backbone_config=CLIP_VIT_B32)


@register_model("t2i_alignment_siglip2_naflex")
def t2i_alignment_siglip2_naflex() -> T2IAlignmentConfig:
    """SigLIP 2 base patch16 NaFlex (256 patches), SigLIP's sigmoid probability; needs tokenizer_path."""
    return T2IAlignmentConfig(
        arch="siglip2",
        backbone_config=SIGLIP2_B16_NAFLEX,
        rule="sigmoid",
        max_num_patches=256,
        input_policy=InputPolicy(
            mode="resize_budget", patch_size=16, max_patches=256, allow_upscale=True, interpolation="bilinear"
        ),
    )
