"""Reinforcement learning to rank a chat VLM with GRPO on TRL (``trainer: grpo``; Wu et al., VisualQuality-R1,
2025).

For each image the policy samples K = ``grpo.num_generations`` answers to the Table 1 prompt of the
``vlm_reasoning`` family (``<think>...</think><answer>SCORE</answer>``). Two rewards, summed with weights
(1, ``grpo.format_weight``) as in the reference:

* the ranking reward of :mod:`perceptiq.training.rl` (:class:`~perceptiq.training.rl.FidelityReward`, eq. 3,
  or the binary ablation), computed over **all B x K answers of a generation batch**: each answer's score
  is compared with the other images' score distributions (eq. 1 or 7) and the MOS order (eq. 2);
* the format reward (1 iff the answer is exactly a think block and an answer block).

TRL turns the summed rewards into group-standardised advantages ``(r - mean_K) / (std_K + 1e-4)`` (eq. 4,
torch's unbiased std, as :func:`perceptiq.training.rl.group_advantages`) and minimises the clipped
surrogate with the k3 KL penalty (``grpo.beta`` = 0.04, ``grpo.epsilon`` = 0.2, ``loss_type: grpo`` =
mean over each answer's tokens, then over answers). Defaults follow the paper: K = 6, lr 1e-6
(``optim.lr`` in the packaged recipe ``vq_r1_grpo``), temperature 1, at most 256 new tokens.

**Batches.** ``data.batch_size`` counts images per process; each process gets ``batch_size x K`` answers,
i.e. **whole groups stay on one device**, and the ranking reward compares the images of that device
only, as the reference does (its comparisons are "on the same device"); TRL then gathers the rewards of
all devices before the advantages. Every generation batch (across processes, and across the
``optim.accumulation_steps`` micro-steps that share one generation) holds images of one dataset
(:func:`perceptiq.training.vlm_data.grouped_generation_order`): MOS of different datasets are never
compared. Malformed answers get the reference's random integer score 1..5 (``grpo.malformed:
reference``), or ``grpo.failure_reward`` (``failure_reward``).

``OUT/completions.jsonl`` (``completions_rankR.jsonl`` per process under DDP) records, for every answer
of every generation, the step, image, dataset, MOS, text, score used, each reward and the advantage the
trainer used; a resumed run first drops the rows of steps it will redo.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from perceptiq.errors import InputError
from perceptiq.training.config import TrainConfig
from perceptiq.training.rl import (
    BinaryReward,
    FidelityReward,
    FormatReward,
    RandomIntegerFallback,
    completion_text,
)
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
from perceptiq.training.vlm_data import GroupedRepeatSampler, image_dataset

__all__ = ["train_grpo", "grpo_prompt", "ranking_reward"]

_log = logging.getLogger("perceptiq.training")


def grpo_prompt(model: Any) -> list[dict[str, Any]]:
    """The user turn of a ``vlm_reasoning`` model as a chat conversation: the image, then its question and
    answer instruction (the text of
    :meth:`~perceptiq.models.vlm_reasoning.VLMReasoningModel.prompt_text`)."""
    from perceptiq.models.vlm_reasoning import NON_THINKING, THINKING

    cfg = model.config
    text = f"{cfg.question} {THINKING if cfg.thinking else NON_THINKING}"
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def ranking_reward(cfg: TrainConfig, parse_options: dict[str, Any]) -> FidelityReward | BinaryReward:
    """The ranking reward of the recipe's ``grpo`` section (TRL's reward signature, K bound)."""
    g = cfg.grpo
    reward_cls = FidelityReward if g.reward == "fidelity" else BinaryReward
    return reward_cls(
        g.num_generations,
        fallback="reference" if g.malformed == "reference" else None,
        failure_reward=g.failure_reward,
        method=g.method,
        variance=g.variance,
        **parse_options,
    )


class _Recorded:
    """A reward function that keeps the arguments and result of its last call (for the completion log)."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self.__name__ = func.__name__
        self.last: tuple[list[Any], dict[str, Any], list[float | None]] | None = None

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        result = self.func(prompts, completions, **kwargs)
        self.last = (list(completions), kwargs, list(result))
        return result


def _trainer_class() -> type:
    from trl import GRPOTrainer

    class QualityGRPOTrainer(GRPOTrainer):
        """TRL's GRPOTrainer with one-dataset generation batches and a completion log."""

        def __init__(self, *args: Any, datasets: list[str], log_path: Path, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._datasets = datasets
            self._log_path = log_path

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            if not restore_weights(model if model is not None else self.model, resume_from_checkpoint):
                super()._load_from_checkpoint(resume_from_checkpoint, model)

        def _get_train_sampler(self, dataset: Any = None) -> GroupedRepeatSampler:
            k = self.num_generations
            return GroupedRepeatSampler(
                self._datasets,
                images_per_batch=self.args.generation_batch_size // k,
                num_generations=k,
                repeat_count=self.num_iterations * self.args.steps_per_generation,
                seed=self.args.seed,
            )

        def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
            rank_fn = self.reward_funcs[0].func
            if isinstance(rank_fn.fallback, RandomIntegerFallback):  # draws set by (seed, step, process)
                key = [self.args.seed, int(self.state.global_step), self.accelerator.process_index]
                rank_fn.fallback = RandomIntegerFallback(
                    seed=int(np.random.SeedSequence(key).generate_state(1)[0])
                )
            output = super()._generate_and_score_completions(inputs)
            self._record(inputs, output["advantages"].detach().float().cpu().tolist())
            return output

        def _record(self, inputs: list[dict[str, Any]], advantages: list[float]) -> None:
            rank_fn, format_fn = self.reward_funcs
            if rank_fn.last is None or format_fn.last is None:
                return
            completions, _, rank_rewards = rank_fn.last
            format_rewards = format_fn.last[2]
            scores = rank_fn.func.last_scores
            step = int(self.state.global_step)
            with self._log_path.open("a", encoding="utf-8") as handle:
                for i, item in enumerate(inputs):
                    row = {
                        "step": step,
                        "image": item["image_path"],
                        "dataset": item["dataset"],
                        "mos": item["mos"],
                        "completion": completion_text(completions[i]),
                        "score": None if math.isnan(scores[i]) else scores[i],
                        "ranking_reward": rank_rewards[i],
                        "format_reward": format_rewards[i],
                        "advantage": advantages[i],
                    }
                    handle.write(json.dumps(row) + "\n")

    return QualityGRPOTrainer


def _log_file(out: Path, rank: int, world: int) -> Path:
    return out / ("completions.jsonl" if world == 1 else f"completions_rank{rank}.jsonl")


def _drop_redone_rows(path: Path, first_redone_step: int) -> None:
    """On resume, keep only the log rows of steps before the checkpoint (those after it are redone)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["step"] < first_redone_step
    ]
    path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def train_grpo(cfg: TrainConfig, *, resume: bool = False) -> dict[str, Any]:
    """Run the ``grpo`` trainer of a recipe; returns the run summary (see the module docstring)."""
    try:
        from trl import GRPOConfig
    except ImportError as err:
        raise InputError("trainer grpo needs `pip install trl` (and peft for LoRA)") from err
    g = cfg.grpo
    if g.num_generations < 2:
        raise InputError("grpo.num_generations must be at least 2 (group advantages need two answers)")
    out = prepare_output(cfg)
    model = open_chat_vlm(cfg)
    train_rows, val_rows = training_rows(cfg)
    dataset = image_dataset(train_rows, {}, prompt=grpo_prompt(model))
    args = GRPOConfig(
        **hf_arguments(cfg, out),
        per_device_train_batch_size=cfg.data.batch_size * g.num_generations,
        num_generations=g.num_generations,
        beta=g.beta,
        epsilon=g.epsilon,
        temperature=g.temperature,
        max_completion_length=g.max_completion_length,
        loss_type=g.loss_type,
        scale_rewards="group",
        reward_weights=[1.0, g.format_weight],
    )
    parse = {"pattern": model.config.pattern, "require_answer": model.config.require_answer}
    rewards = [_Recorded(ranking_reward(cfg, parse)), _Recorded(FormatReward())]
    checkpoint = newest_checkpoint(out, resume)
    log_path = _log_file(out, args.process_index, args.world_size)
    if checkpoint is None:
        log_path.unlink(missing_ok=True)
    else:
        _drop_redone_rows(log_path, int(Path(checkpoint).name.rsplit("-", 1)[-1]))
    trainer = _trainer_class()(
        model=model.vlm,
        reward_funcs=rewards,
        args=args,
        train_dataset=dataset,
        processing_class=model.processor,
        peft_config=lora_config(cfg),
        datasets=train_rows["dataset"].tolist(),
        log_path=log_path,
    )
    trainer.train(resume_from_checkpoint=checkpoint)
    return finish_run(cfg, trainer, model.processor, out, val_rows)
