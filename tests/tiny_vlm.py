"""A tiny random-initialised chat VLM (Qwen2-VL or Qwen2.5-VL) saved with ``save_pretrained``, built offline:
real transformers config and model classes at small sizes, a word-level tokenizer made with ``tokenizers``
(every prompt word, the five level words, Yes/No and the chat special tokens are single tokens) and the
real Qwen2-VL image processor with small pixel bounds."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch

SPECIAL = [
    "<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip
WORD_TEXT = (
    "user assistant system how would you rate the quality of this image ? is . , : excellent good fair "
    "poor bad yes no Yes No does match prompt a photo cat dog red blue there in answer with or tree car "
    "How well The alignment Is"
)
WORDS = WORD_TEXT.split()
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<|vision_start|><|image_pad|>"
    "<|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab: dict[str, int] = {}
    for word in [*SPECIAL, *WORDS]:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<|endoftext|>", eos_token="<|im_end|>"
    )
    fast.add_special_tokens({"additional_special_tokens": SPECIAL[2:]})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_vlm(
    folder: str | Path, family: str = "qwen2_vl", seed: int = 0, max_pixels: int = 112 * 112
) -> Path:
    """Write a tiny ``family`` ("qwen2_vl" or "qwen2_5_vl") checkpoint to ``folder``; returns the folder.
    ``max_pixels`` bounds the image size the processor keeps (Qwen2-VL resizes larger images down)."""
    import transformers as tf

    torch.manual_seed(seed)
    folder = Path(folder)
    tokenizer = build_tokenizer()
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    text = {
        "vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 512,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        "tie_word_embeddings": False, "pad_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
        "bos_token_id": ids["<|endoftext|>"],
    }  # fmt: skip
    special = {
        "image_token_id": ids["<|image_pad|>"], "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"], "vision_end_token_id": ids["<|vision_end|>"],
    }  # fmt: skip
    if family == "qwen2_vl":
        vision = {"depth": 2, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}  # fmt: skip
        config = tf.Qwen2VLConfig(
            text_config=text, vision_config=vision, tie_word_embeddings=False, **special
        )
        model = tf.Qwen2VLForConditionalGeneration(config)
        processor_cls = tf.Qwen2VLProcessor
    elif family == "qwen2_5_vl":
        vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
                  "out_hidden_size": 64, "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2,
                  "window_size": 56, "fullatt_block_indexes": [1]}  # fmt: skip
        config = tf.Qwen2_5_VLConfig(
            text_config=text, vision_config=vision, tie_word_embeddings=False, **special
        )
        model = tf.Qwen2_5_VLForConditionalGeneration(config)
        processor_cls = tf.Qwen2_5_VLProcessor
    else:
        raise ValueError(family)
    image_processor = tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_pixels)
    video_processor = tf.Qwen2VLVideoProcessor()
    processor = processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )
    model.eval()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@functools.cache
def shared_tiny_vlm() -> Path:
    """One tiny Qwen2-VL checkpoint per test session (a temporary folder removed at exit), for the registry
    contract tests, whose tiny configurations are plain functions rather than fixtures."""
    folder = Path(tempfile.mkdtemp(prefix="perceptiq-tiny-vlm-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return build_tiny_vlm(folder)
