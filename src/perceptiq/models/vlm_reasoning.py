"""Reason-then-score with a chat vision-language model (VisualQuality-R1 inference).

Wu et al., "VisualQuality-R1: Reasoning-Induced Image Quality Assessment via Reinforcement Learning to Rank"
(2025): the model is asked the structured prompt of the paper's Table 1, **samples** an answer
``<think>...</think><answer>SCORE</answer>``, and the score is read from the answer with the reference
parser :func:`perceptiq.training.rl.parse_answer` (it lives in :mod:`perceptiq.functional.answers`): the
last ``<answer>`` block, else the whole text; its first number (``pattern="train"``: the training code's
``-?\\d+(\\.\\d+)?``; ``"readme"``: the README's ``\\d+(\\.\\d+)?``).
The user turn is the image, then ``question`` followed by

* ``thinking=True``: "First output the thinking process in <think> </think> tags and then output the final
  answer with only one score in <answer> </answer> tags." (Table 1; the training template);
* ``thinking=False``: "Please only output the final answer with only one score in <answer> </answer>
  tags." (the reference's non-thinking inference template).

The default ``question`` is the Table 1 text; the reference code (``qwen_module.py``) words it "What is your
overall rating on the quality of this picture? The rating should be a float between 1 and 5, rounded to
two decimal places, ..." (set ``question=`` to use it).

``samples`` (K) answers are drawn per image by plain multinomial sampling at ``temperature`` (no top-k /
top-p, whatever the checkpoint's generation config says; ``temperature=0`` is greedy decoding and needs
K = 1), at most ``max_new_tokens`` each. Every image is generated on its own with the random generator
reset to ``seed`` (the global torch generator is left untouched), so an image's answers do not depend on
the batch it came in, and the same seed gives the same answers.

``forward(images)`` is the mean of the well-formed scores of each image; :meth:`VLMReasoningModel.explain`
also gives their unbiased standard deviation (ddof = 1, as the group variance of the reference reward: NaN
with fewer than two well-formed answers), the K scores, the K rationales and the count of malformed
answers. **A malformed answer is never replaced by a random score here**: the reference's
``random.randint(1, 5)`` fallback belongs to training (:class:`perceptiq.training.rl.RandomIntegerFallback`);
an image without any well-formed answer scores NaN and is counted in ``explain``. Scores are not clamped
(the reference does not clamp either), so ``score_range`` is None.

``checkpoint`` is a local ``save_pretrained`` folder or a hub id already in the local cache, loaded with
``AutoModelForImageTextToText`` and ``AutoProcessor`` as in :mod:`perceptiq.models.vlm_levels`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import torch

from perceptiq.errors import InputError
from perceptiq.functional.answers import ANSWER_PATTERNS, ParseResult, parse_answer
from perceptiq.models._base import (
    ModelConfig,
    check_dtype,
    register_family,
    register_model,
)
from perceptiq.models.vlm_levels import (
    ChatVLMModel,
    chat_text,
    processor_inputs,
    set_precision,
)

__all__ = ["VLMReasoningConfig", "VLMReasoningModel", "VLMReasoningResult", "THINKING", "NON_THINKING"]

TABLE1_QUESTION = (
    "You are doing the image quality assessment task. Here is the question: Rate the overall image visual "
    "quality. The rating should be a float between 1 and 5, with 1 representing very poor quality and 5 "
    "representing excellent quality."
)
THINKING = (
    "First output the thinking process in <think> </think> tags and then output the final answer with only "
    "one score in <answer> </answer> tags."
)
NON_THINKING = "Please only output the final answer with only one score in <answer> </answer> tags."
_THINK_BLOCK = re.compile(r"<think>(.*?)</think>", re.DOTALL)


@dataclass
class VLMReasoningConfig(ModelConfig):
    """Configuration of :class:`VLMReasoningModel`.

    Attributes:
        checkpoint: local ``save_pretrained`` folder or hub id (read from the local cache only).
        question: the quality question (Table 1 of the paper by default).
        thinking: ask for ``<think>`` reasoning before the answer (True) or for the answer only.
        samples: K answers sampled per image.
        temperature: sampling temperature (0: greedy, K must be 1).
        seed: the generator seed each image's sampling starts from.
        max_new_tokens: the most tokens of one answer.
        pattern: number pattern of the parser, ``"train"`` or ``"readme"``.
        require_answer: count an answer without an ``<answer>`` block as malformed instead of searching
            the whole text (the reference searches the whole text).
        dtype: ``"float32"``; ``"float16"`` or ``"bfloat16"`` apply on a GPU only (CPU stays float32).
    """

    family = "vlm_reasoning"
    checkpoint: str | None = None
    question: str = TABLE1_QUESTION
    thinking: bool = True
    samples: int = 1
    temperature: float = 1.0
    seed: int = 0
    max_new_tokens: int = 256
    pattern: Literal["train", "readme"] = "train"
    require_answer: bool = False
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"


@dataclass
class VLMReasoningResult:
    """Output of :meth:`VLMReasoningModel.explain`, one entry per image.

    Attributes:
        mean: (B,) mean of the well-formed scores (NaN when there is none).
        std: (B,) their unbiased standard deviation (NaN with fewer than two).
        scores: per image, the K parsed scores (NaN for a malformed answer).
        rationales: per image, the K rationales: the last ``<think>`` block, stripped (the whole answer
            when it has no such block).
        completions: per image, the K generated texts.
        malformed: (B,) number of malformed answers.
    """

    mean: torch.Tensor
    std: torch.Tensor
    scores: list[list[float]]
    rationales: list[list[str]]
    completions: list[list[str]]
    malformed: torch.Tensor


def _rationale(text: str) -> str:
    blocks = _THINK_BLOCK.findall(text)
    return blocks[-1].strip() if blocks else text.strip()


@register_family("vlm_reasoning")
class VLMReasoningModel(ChatVLMModel):
    """Chat VLM -> K sampled reason-then-score answers -> mean of their scores (see the module docstring)."""

    config_class = VLMReasoningConfig
    score_range = None

    def __init__(self, config: VLMReasoningConfig) -> None:
        if int(config.samples) < 1:
            raise InputError(f"samples must be at least 1, got {config.samples}")
        if not float(config.temperature) >= 0:
            raise InputError(f"temperature must be >= 0, got {config.temperature}")
        if float(config.temperature) == 0 and int(config.samples) != 1:
            raise InputError(f"temperature 0 (greedy) is greedy: samples must be 1, got {config.samples}")
        if int(config.max_new_tokens) < 1:
            raise InputError(f"max_new_tokens must be at least 1, got {config.max_new_tokens}")
        if config.pattern not in ANSWER_PATTERNS:
            raise InputError(f"pattern must be one of {sorted(ANSWER_PATTERNS)}, got {config.pattern!r}")
        check_dtype(config.dtype)
        super().__init__(config)
        self._open_checkpoint(config, "TianheWu/VisualQuality-R1-7B")

    def prompt_text(self) -> str:
        """The chat text of one image (the image placeholder, the question and the answer instruction)."""
        cfg = self.config
        return chat_text(self.processor, f"{cfg.question} {THINKING if cfg.thinking else NON_THINKING}")

    @torch.no_grad()
    def generate(self, image: torch.Tensor) -> list[str]:
        """The K sampled answers to one image (3, H, W) in [0, 1], decoded without special tokens."""
        cfg = self.config
        device = set_precision(self.vlm, cfg.dtype)
        inputs = processor_inputs(self.processor, self.vlm, image[None], [self.prompt_text()])
        sampling = float(cfg.temperature) > 0
        options: dict[str, Any] = {"do_sample": sampling, "max_new_tokens": int(cfg.max_new_tokens)}
        if sampling:
            options.update(temperature=float(cfg.temperature), top_k=0, top_p=1.0)
            options["num_return_sequences"] = int(cfg.samples)
        pad = self.tokenizer.pad_token_id
        options["pad_token_id"] = self.tokenizer.eos_token_id if pad is None else pad
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(int(cfg.seed))
            out = self.vlm.generate(**inputs, **options)
        new = out[:, inputs["input_ids"].shape[1] :]
        return list(self.tokenizer.batch_decode(new, skip_special_tokens=True))

    def parse(self, text: str) -> ParseResult:
        """One answer through :func:`perceptiq.training.rl.parse_answer` with this model's options."""
        return parse_answer(text, pattern=self.config.pattern, require_answer=self.config.require_answer)

    def explain(self, images: torch.Tensor) -> VLMReasoningResult:
        """Mean, std, K scores, K rationales, K texts and malformed count of (B, 3, H, W) images in [0, 1]."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise InputError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        means, stds, scores, rationales, completions, malformed = [], [], [], [], [], []
        for image in images:
            texts = self.generate(image)
            parsed = [self.parse(t) for t in texts]
            good = [p.value for p in parsed if p.ok]
            values = torch.tensor(good, dtype=torch.float64)
            means.append(values.mean().item() if good else math.nan)
            stds.append(values.std().item() if len(good) > 1 else math.nan)
            scores.append([p.value if p.ok else math.nan for p in parsed])
            rationales.append([_rationale(t) for t in texts])
            completions.append(texts)
            malformed.append(len(texts) - len(good))
        return VLMReasoningResult(
            mean=torch.tensor(means, dtype=torch.float32, device=images.device),
            std=torch.tensor(stds, dtype=torch.float32, device=images.device),
            scores=scores,
            rationales=rationales,
            completions=completions,
            malformed=torch.tensor(malformed, dtype=torch.long),
        )

    def forward(self, images: torch.Tensor, reference: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) mean of the well-formed answers' scores; NaN for an image without any (no random score)."""
        return self.explain(images).mean


@register_model("vlm_reasoning")
def vlm_reasoning() -> VLMReasoningConfig:
    """Reason-then-score answers of a chat VLM (VisualQuality-R1); needs checkpoint= (folder or hub id)."""
    return VLMReasoningConfig()
