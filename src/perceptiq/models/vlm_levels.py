"""Level-token scoring with a chat vision-language model (Q-Align, DeQA-Score; yes/no element presence).

Wu et al., "Q-Align: Teaching LMMs for Visual Scoring via Discrete Text-Defined Levels" (2023) and You et
al., "Teaching Large Language Models to Regress Accurate Image Quality Scores using Score Distribution"
(DeQA-Score, 2025): ask the model about the image, run **one forward pass** over the chat prompt plus an
answer prefix, read the logits of the five level words ``excellent, good, fair, poor, bad`` at the next
position, softmax over those five and weight them (:mod:`perceptiq.functional.levels`):

* ``weighting="qalign"``: ``[1, 0.75, 0.5, 0.25, 0]`` (Q-Align ``QAlignScorer``), scores in [0, 1];
* ``weighting="deqa"``: ``[5, 4, 3, 2, 1]`` (DeQA-Score, the Q-Align README), scores in [1, 5].

Any transformers chat VLM loadable with ``AutoModelForImageTextToText`` and ``AutoProcessor`` works
(Qwen2-VL and Qwen2.5-VL checked); ``checkpoint`` is a local folder written by ``save_pretrained`` or a
hub id already in the local cache (nothing is downloaded). Modes (``mode``):

* ``"quality"``: ``prompt`` then ``answer_prefix``;
* ``"alignment"``: ``alignment_prompt`` with the text-to-image prompt in ``{prompt}``, then
  ``alignment_answer_prefix``;
* ``"elements"``: the alignment score, plus for each element ``element_prompt`` (``{element}``) and the
  two-way softmax of the ``Yes`` / ``No`` token logits at the answer position: ``P(yes)``, the element
  prediction of the NTIRE 2025 T2I alignment track (EvalMuse ``eval.py`` binarises it at 0.5).

``forward(images)`` scores the images (quality, or alignment against ``default_prompt``);
:meth:`VLMLevelsModel.score_with_text` takes one T2I prompt per image and the elements, as
:meth:`perceptiq.models.t2i_alignment.T2IAlignmentModel.score_with_text` does.

A level word is looked up as the first token of ``" " + word`` when the text before it ends in a
non-space character (``"... the image is"``), else of ``word`` itself; two words sharing that token are
refused. The image goes to the processor as float RGB in [0, 1] (no 1/255 rescale); the processor
resizes it as the checkpoint's image processor says (Qwen2-VL: ``min_pixels`` / ``max_pixels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from perceptiq.errors import InputError
from perceptiq.functional.levels import LEVEL_NAMES, LEVEL_WEIGHTS, level_probs_from_logits, level_score
from perceptiq.models._base import (
    ModelConfig,
    QualityModel,
    WeightsError,
    check_dtype,
    gpu_dtype,
    initial_weights_wanted,
    register_family,
    register_model,
)

__all__ = ["ChatVLMModel", "VLMLevelsConfig", "VLMLevelsModel", "VLMLevelsResult"]


@dataclass
class VLMLevelsConfig(ModelConfig):
    """Configuration of :class:`VLMLevelsModel`.

    Attributes:
        checkpoint: local ``save_pretrained`` folder or hub id (read from the local cache only).
        mode: ``"quality"``, ``"alignment"`` or ``"elements"``.
        weighting: ``"qalign"`` ([1, 0.75, 0.5, 0.25, 0]) or ``"deqa"`` ([5, 4, 3, 2, 1]).
        prompt, answer_prefix: the quality question and the start of the answer (Q-Align's scorer).
        alignment_prompt, alignment_answer_prefix: the alignment question (``{prompt}``) and answer start.
        element_prompt, element_answer_prefix: the element question (``{element}``) and answer start.
        default_prompt: the T2I prompt ``forward`` uses in the alignment and elements modes.
        level_words: the five level words, best first.
        yes_word, no_word: the element answers.
        dtype: ``"float32"``; ``"float16"`` or ``"bfloat16"`` apply on a GPU only (CPU stays float32).
        threshold: element label threshold (``p >= threshold``).
    """

    family = "vlm_levels"
    checkpoint: str | None = None
    mode: Literal["quality", "alignment", "elements"] = "quality"
    weighting: Literal["qalign", "deqa"] = "qalign"
    prompt: str = "How would you rate the quality of this image?"
    answer_prefix: str = "The quality of the image is"
    alignment_prompt: str = 'How well does this image match the prompt "{prompt}"?'
    alignment_answer_prefix: str = "The alignment of the image with the prompt is"
    element_prompt: str = "Is there {element} in the image? Answer yes or no."
    element_answer_prefix: str = ""
    default_prompt: str = "a photo"
    level_words: tuple[str, ...] = LEVEL_NAMES
    yes_word: str = "Yes"
    no_word: str = "No"
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    threshold: float = 0.5


@dataclass
class VLMLevelsResult:
    """Output of :meth:`VLMLevelsModel.score_with_text`.

    Attributes:
        overall: (B,) weighted level scores.
        level_probs: (B, 5) level probabilities, best level first.
        element_probs: per image, (n_elements,) ``P(yes)`` (empty outside the elements mode).
        element_labels: per image, (n_elements,) 0/1 labels (``>= threshold``).
    """

    overall: torch.Tensor
    level_probs: torch.Tensor
    element_probs: list[torch.Tensor]
    element_labels: list[torch.Tensor]


def _load(checkpoint: str, *, pretrained: bool, family: str = "vlm_levels") -> tuple[Any, Any]:
    """The processor and the model of ``checkpoint`` (local files only); one-line errors."""
    try:
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    except ImportError as err:
        raise InputError(f"{family} needs `pip install transformers`") from err
    try:
        processor = AutoProcessor.from_pretrained(checkpoint, local_files_only=True)
        if pretrained:
            model = AutoModelForImageTextToText.from_pretrained(
                checkpoint, local_files_only=True, dtype=torch.float32
            )
        else:  # every weight is filled from a saved perceptiq model next
            config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
            model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if checkpoint.startswith((".", "/", "~")) or Path(checkpoint).exists():
            problem = f"not a chat VLM folder written by save_pretrained ({first})"
            raise WeightsError(f"{checkpoint}: {problem}") from None
        raise WeightsError(
            f"{checkpoint}: cannot load a chat VLM from this folder or the local hub cache (offline; fetch "
            f"it on a connected machine (`huggingface-cli download {checkpoint}`) or pass a folder): {first}"
        ) from None
    return processor, model


def chat_text(processor: Any, question: str, prefix: str = "") -> str:
    """The chat text of one user turn (an image, then ``question``), the generation prompt, ``prefix``."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + prefix


def set_precision(vlm: Any, dtype: str) -> torch.device:
    """Cast ``vlm`` to ``dtype`` on a GPU, float32 elsewhere; returns its device."""
    param = next(vlm.parameters())
    want = gpu_dtype(dtype, param.device)
    if param.dtype != want:
        vlm.to(want)
    return param.device


def processor_inputs(processor: Any, vlm: Any, images: torch.Tensor, texts: list[str]) -> dict[str, Any]:
    """The model inputs of (image, text) pairs, left-padded (every row ends at its last prompt token), on the
    VLM's device and (floating tensors) dtype; images are float RGB in [0, 1] (no 1/255 rescale)."""
    param = next(vlm.parameters())
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    try:
        pics = [img.detach().float().clamp(0, 1).cpu() for img in images]
        inputs = processor(text=texts, images=pics, do_rescale=False, return_tensors="pt", padding=True)
    finally:
        tokenizer.padding_side = side
    return {
        k: v.to(param.device, param.dtype) if v.is_floating_point() else v.to(param.device)
        for k, v in inputs.items()
    }


class ChatVLMModel(QualityModel):
    """What the chat-VLM families share: the checkpoint (processor + VLM, local files only, one-line
    errors, never random weights) and float32 images while only the VLM runs in ``config.dtype``."""

    def _open_checkpoint(self, config: ModelConfig, example: str) -> None:
        """Load ``config.checkpoint`` into ``self.processor``, ``self.vlm`` and ``self.tokenizer``."""
        if not config.checkpoint:
            raise WeightsError(
                f"{config.family} needs a chat VLM checkpoint: checkpoint=FOLDER or a hub id in the local "
                f"cache (e.g. --option checkpoint={example}); it never scores with random weights"
            )
        pretrained = initial_weights_wanted()
        self.processor, self.vlm = _load(str(config.checkpoint), pretrained=pretrained, family=config.family)
        self.vlm.eval()
        self.has_trained_weights = pretrained
        self.tokenizer = getattr(self.processor, "tokenizer", None)
        if self.tokenizer is None or not hasattr(self.processor, "apply_chat_template"):
            raise WeightsError(f"{config.checkpoint}: the processor has no tokenizer or chat template")

    def input_placement(self) -> tuple[torch.device, torch.dtype]:
        """Images stay float32 on the VLM's device: only the VLM runs in ``dtype`` (cast here, on a GPU)."""
        return set_precision(self.vlm, self.config.dtype), torch.float32


@register_family("vlm_levels")
class VLMLevelsModel(ChatVLMModel):
    """Chat VLM -> five level-token probabilities -> weighted score (see the module docstring)."""

    config_class = VLMLevelsConfig
    score_range = None

    def __init__(self, config: VLMLevelsConfig) -> None:
        if config.mode not in ("quality", "alignment", "elements"):
            raise InputError(f"mode must be 'quality', 'alignment' or 'elements', got {config.mode!r}")
        if config.weighting not in LEVEL_WEIGHTS:
            raise InputError(f"weighting must be one of {sorted(LEVEL_WEIGHTS)}, got {config.weighting!r}")
        check_dtype(config.dtype)
        if len(config.level_words) != 5:
            raise InputError(f"level_words needs 5 words (best first), got {list(config.level_words)}")
        for name, key in (("alignment_prompt", "{prompt}"), ("element_prompt", "{element}")):
            if key not in getattr(config, name):
                raise InputError(f"{name} must contain {key}, got {getattr(config, name)!r}")
        super().__init__(config)
        self._open_checkpoint(config, "Qwen/Qwen2.5-VL-7B-Instruct")
        self.score_range = (0.0, 1.0) if config.weighting == "qalign" else (1.0, 5.0)

    # -- tokens -----------------------------------------------------------------------------------
    def answer_token_ids(self, words: tuple[str, ...] | list[str], prefix: str) -> list[int]:
        """The token id each answer word starts with after ``prefix`` (see the module docstring)."""
        spaced = bool(prefix) and not prefix[-1].isspace()
        ids = []
        for word in words:
            tokens = self.tokenizer(" " + word if spaced else word, add_special_tokens=False)["input_ids"]
            if not tokens:
                raise InputError(f"{word!r} encodes to no token with this tokenizer")
            ids.append(int(tokens[0]))
        if len(set(ids)) != len(ids):
            raise InputError(f"the answer words {list(words)} share a first token with this tokenizer")
        return ids

    def _text(self, question: str, prefix: str) -> str:
        return chat_text(self.processor, question, prefix)

    def _answer_logits(self, images: torch.Tensor, texts: list[str], token_ids: list[int]) -> torch.Tensor:
        """Logits (B, len(token_ids)) of the answer tokens after each (image, text), float32."""
        set_precision(self.vlm, self.config.dtype)
        inputs = processor_inputs(self.processor, self.vlm, images, texts)
        logits = self.vlm(**inputs).logits[:, -1, :]
        return logits[:, torch.tensor(token_ids, device=logits.device)].float()

    # -- scoring ----------------------------------------------------------------------------------
    def level_probabilities(self, images: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
        """(B, 5) level probabilities (best first) of images (B, 3, H, W) in [0, 1]; ``prompts`` are the
        T2I prompts in the alignment and elements modes (ignored in the quality mode)."""
        cfg = self.config
        if cfg.mode == "quality":
            question, prefix = [cfg.prompt] * len(images), cfg.answer_prefix
        else:
            prompts = [cfg.default_prompt] * len(images) if prompts is None else prompts
            question = [cfg.alignment_prompt.replace("{prompt}", p) for p in prompts]
            prefix = cfg.alignment_answer_prefix
        texts = [self._text(q, prefix) for q in question]
        logits = self._answer_logits(images, texts, self.answer_token_ids(cfg.level_words, prefix))
        return level_probs_from_logits(logits)

    def element_probabilities(self, images: torch.Tensor, elements: list[list[str]]) -> list[torch.Tensor]:
        """``P(yes)`` of each element of each image: two-way softmax of the Yes / No logits."""
        cfg = self.config
        owners = [i for i, keys in enumerate(elements) for _ in keys]
        if not owners:
            return [images.new_zeros(0, dtype=torch.float32) for _ in elements]
        texts = [
            self._text(cfg.element_prompt.replace("{element}", key), cfg.element_answer_prefix)
            for keys in elements
            for key in keys
        ]
        ids = self.answer_token_ids([cfg.yes_word, cfg.no_word], cfg.element_answer_prefix)
        logits = self._answer_logits(images[torch.tensor(owners, device=images.device)], texts, ids)
        p_yes = torch.softmax(logits, dim=-1)[:, 0]
        return list(torch.split(p_yes, [len(k) for k in elements]))

    def score_with_text(
        self,
        images: torch.Tensor,
        prompts: list[str] | str | None = None,
        elements: list[str] | list[list[str]] | None = None,
    ) -> VLMLevelsResult:
        """Level score, level probabilities and (elements mode) element ``P(yes)`` of (B, 3, H, W) images.

        Args:
            images: RGB in [0, 1].
            prompts: the T2I prompt of each image, or one for all (alignment and elements modes).
            elements: element texts, one list shared by all images or one list per image (elements mode).
        """
        from perceptiq.models.t2i_alignment import _as_element_lists, binarize_elements, element_text

        batch = images.shape[0]
        prompt_list = None
        if prompts is not None:
            prompt_list = [prompts] * batch if isinstance(prompts, str) else list(prompts)
            if len(prompt_list) != batch:
                raise InputError(f"{len(prompt_list)} prompts for {batch} images")
        if elements is not None and self.config.mode != "elements":
            raise InputError(f"elements need mode 'elements' (this model's mode is {self.config.mode!r})")
        probs = self.level_probabilities(images, prompt_list)
        element_lists = [
            [element_text(k).strip() for k in keys] for keys in _as_element_lists(elements, batch)
        ]
        element_probs = self.element_probabilities(images, element_lists)
        labels = [binarize_elements(p, self.config.threshold) for p in element_probs]
        return VLMLevelsResult(level_score(probs, self.config.weighting), probs, element_probs, labels)

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        return level_score(self.level_probabilities(images), self.config.weighting)


@register_model("vlm_levels")
def vlm_levels() -> VLMLevelsConfig:
    """Level-token scores of a chat VLM (Q-Align / DeQA); needs checkpoint= (a folder or cached hub id)."""
    return VLMLevelsConfig()
