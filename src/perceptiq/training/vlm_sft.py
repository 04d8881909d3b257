"""Level-token fine-tuning of a chat VLM with DeQA-Score soft labels (``trainer: deqa_sft``; You et al.,
"Teaching Large Language Models to Regress Accurate Image Quality Scores using Score Distribution", 2025).

The supervised baseline to compare reinforcement learning to rank with on the same data. Each training
image gets the ``vlm_levels`` quality question and the answer ``deqa.answer`` ("The quality of the image is
{level}."), whose level word is the Q-Align bin of the MOS (five equal-width bins of the dataset's MOS
range, :func:`perceptiq.functional.levels.mos_to_level`). The loss per batch is the DeQA-Score one
(``train.sh``):

``CE(answer tokens except the level token) + deqa.weight_softkl * KL(soft label || softmax(logits))``

where the KL is taken at the level-token position over the **whole vocabulary**, with the soft label's mass
on the five level-word tokens (:func:`perceptiq.losses.distribution.deqa_soft_label` from MOS and rating
std, with the dataset's MOS range; :func:`perceptiq.losses.distribution.kl_divergence_loss`,
``batchmean``). Without a ``mos_std`` column the std is ``deqa.default_std`` (0: DeQA's two-level split of
the MOS).

The level word is found in the answer as the token ``vlm_levels`` reads after its ``answer_prefix``, so the
text of ``deqa.answer`` before ``{level}`` must be that prefix: the trained folder then scores with
``create_model("vlm_levels", checkpoint=OUT/final, weighting="deqa")`` exactly as it was trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from perceptiq.errors import InputError
from perceptiq.functional.levels import mos_to_level_index
from perceptiq.losses.distribution import deqa_soft_label, kl_divergence_loss
from perceptiq.models.vlm_levels import chat_text
from perceptiq.training.config import TrainConfig
from perceptiq.training.vlm_common import (
    finish_run,
    hf_arguments,
    lora_config,
    newest_checkpoint,
    open_chat_vlm,
    prepare_output,
    restore_weights,
    training_rows,
)
from perceptiq.training.vlm_data import image_dataset

__all__ = ["train_deqa_sft", "soft_labels_and_levels", "LevelAnswerCollator", "deqa_token_loss"]


def soft_labels_and_levels(rows: pd.DataFrame, density: str) -> tuple[np.ndarray, np.ndarray]:
    """Soft labels (N, 5), best level first, and level indices (N,) 1 (bad) .. 5 (excellent) of the rows,
    each from its dataset's raw MOS range (``mos_raw``, ``std_raw``, ``mos_min``, ``mos_max``)."""
    soft = np.zeros((len(rows), 5))
    levels = np.zeros(len(rows), dtype=np.int64)
    for _, part in rows.groupby("dataset"):
        at = rows.index.get_indexer(part.index)
        low, high = float(part["mos_min"].iloc[0]), float(part["mos_max"].iloc[0])
        mos = torch.tensor(part["mos_raw"].to_numpy(dtype=np.float64))
        std = torch.tensor(part["std_raw"].to_numpy(dtype=np.float64))
        soft[at] = deqa_soft_label(
            mos, std, min_mos=low, max_mos=high, density=density, order="descending"
        ).numpy()
        levels[at] = mos_to_level_index(mos, low, high).numpy()
    return soft, levels


def deqa_token_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    positions: torch.Tensor,
    soft_labels: torch.Tensor,
    level_ids: list[int],
    weight_softkl: float,
) -> torch.Tensor:
    """``CE + w KL`` of a batch: next-token cross-entropy over the tokens whose label is not -100 (the level
    token excluded), plus the soft-label KL of the logits that predict the token at ``positions``."""
    vocab = logits.shape[-1]
    ce = F.cross_entropy(
        logits[:, :-1].reshape(-1, vocab).float(), labels[:, 1:].reshape(-1), ignore_index=-100
    )
    rows = torch.arange(logits.shape[0], device=logits.device)
    at_level = logits[rows, positions - 1].float()
    kl = kl_divergence_loss(
        at_level, soft_labels.to(at_level), index=torch.tensor(level_ids), reduction="batchmean"
    )
    return ce + weight_softkl * kl


class LevelAnswerCollator:
    """Batches of (image, chat prompt + level answer): the processor's inputs, ``labels`` (-100 outside the
    answer and at the level token), ``level_positions`` and ``soft_labels``."""

    def __init__(self, model: Any, answer: str) -> None:
        cfg = model.config
        prefix, self.suffix = answer.split("{level}", 1)
        if prefix.rstrip() != cfg.answer_prefix.rstrip():
            raise InputError(
                f"deqa.answer must start with the model's answer_prefix {cfg.answer_prefix!r} (it is "
                f"{prefix!r}), so the trained model is scored where it was trained"
            )
        self.processor, self.tokenizer = model.processor, model.tokenizer
        self.prompt = chat_text(model.processor, cfg.prompt)
        self.prefix = prefix
        self.words = list(cfg.level_words)
        self.level_ids = model.answer_token_ids(cfg.level_words, cfg.answer_prefix)
        self.eos = self.tokenizer.eos_token or ""

    def answer(self, level_index: int) -> str:
        """The answer text of level index 1 (bad) .. 5 (excellent), end-of-turn token included."""
        return f"{self.prefix}{self.words[5 - level_index]}{self.suffix}{self.eos}"

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        answers = [self.answer(int(item["level"])) for item in items]
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "right"
        try:
            batch = self.processor(
                text=[self.prompt + a for a in answers],
                images=[item["image"] for item in items],
                return_tensors="pt",
                padding=True,
            )
        finally:
            self.tokenizer.padding_side = side
        ids = batch["input_ids"]
        labels = torch.full_like(ids, -100)
        positions = torch.zeros(len(items), dtype=torch.long)
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        for i, (answer, item) in enumerate(zip(answers, items, strict=True)):
            n_answer = len(self.tokenizer(answer, add_special_tokens=False)["input_ids"])
            start, end = lengths[i] - n_answer, lengths[i]
            labels[i, start:end] = ids[i, start:end]
            want = self.level_ids[5 - int(item["level"])]
            hits = [p for p in range(start, end) if int(ids[i, p]) == want]
            if not hits:
                raise InputError(
                    f"the level word of {answer!r} does not tokenise as the answer_prefix predicts"
                )
            positions[i] = hits[0]
            labels[i, hits[0]] = -100
        batch["labels"] = labels
        batch["level_positions"] = positions
        batch["soft_labels"] = torch.tensor([item["soft_label"] for item in items], dtype=torch.float32)
        return dict(batch)


def _trainer_class() -> type:
    from transformers import Trainer

    class DeQATrainer(Trainer):
        """transformers' Trainer with the DeQA-Score token loss."""

        def __init__(self, *args: Any, level_ids: list[int], weight_softkl: float, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.level_ids, self.weight_softkl = level_ids, weight_softkl

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            if not restore_weights(model if model is not None else self.model, resume_from_checkpoint):
                super()._load_from_checkpoint(resume_from_checkpoint, model)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            labels = inputs.pop("labels")
            positions = inputs.pop("level_positions")
            soft = inputs.pop("soft_labels")
            outputs = model(**inputs)
            loss = deqa_token_loss(
                outputs.logits, labels, positions, soft, self.level_ids, self.weight_softkl
            )
            return (loss, outputs) if return_outputs else loss

    return DeQATrainer


def train_deqa_sft(cfg: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the ``deqa_sft`` trainer of a recipe; returns the run summary (see the module docstring)."""
    from transformers import TrainingArguments

    out = prepare_output(cfg)
    model = open_chat_vlm(cfg)
    collator = LevelAnswerCollator(model, cfg.deqa.answer)
    train_rows, val_rows = training_rows(cfg, std_default=cfg.deqa.default_std)
    soft, levels = soft_labels_and_levels(train_rows, cfg.deqa.density)
    dataset = image_dataset(train_rows, {"level": levels.tolist(), "soft_label": soft.tolist()})
    args = TrainingArguments(**hf_arguments(cfg, out), per_device_train_batch_size=cfg.data.batch_size)
    network = model.vlm
    lora = lora_config(cfg)
    if lora is not None:
        from peft import get_peft_model

        network = get_peft_model(network, lora)
    trainer = _trainer_class()(
        model=network,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        level_ids=collator.level_ids,
        weight_softkl=cfg.deqa.weight_softkl,
    )
    trainer.train(resume_from_checkpoint=newest_checkpoint(out, resume))
    return finish_run(cfg, trainer, model.processor, out, val_rows)
