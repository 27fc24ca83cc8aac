"""Tiny models, tokenizers and datasets made on the fly, for tests that have no Hugging Face hub.

Shared by the training and serving runtime tests. Everything is deterministic and small enough to
train for a few steps on two CPU cores in seconds: a byte-level BPE tokenizer (256 byte tokens +
merges + special tokens) with a chat template, a two-layer Llama sized to that tokenizer, and
synthetic JSONL files whose text follows simple patterns, so the loss visibly goes down.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BOS, EOS, PAD = "<|bos|>", "<|eos|>", "<|pad|>"

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
"""A minimal template whose rendering of a conversation prefix is a prefix of the full rendering,
which is what masking the loss to assistant turns relies on."""

_COLOURS = ["red", "blue", "green", "yellow", "black", "white", "orange", "purple"]
_ANIMALS = ["cat", "dog", "fox", "owl", "bee", "cow", "eel", "yak"]


def sentences(count: int, seed: int = 0) -> Iterator[tuple[str, str]]:
    """(prompt, response) pairs following learnable patterns: the response repeats the prompt's words."""
    rng = random.Random(seed)
    for _ in range(count):
        colour, animal = rng.choice(_COLOURS), rng.choice(_ANIMALS)
        count_word = rng.randint(1, 9)
        prompt = f"How many {colour} {animal}s are there?"
        response = f"There are {count_word} {colour} {animal}s."
        yield prompt, response


def train_tokenizer(save_dir: Path | None = None, vocab_size: int = 384) -> Any:
    """A byte-level BPE tokenizer with bos/eos/pad and a chat template (a `PreTrainedTokenizerFast`)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = [PAD, BOS, EOS, "<|user|>", "<|assistant|>", "<|system|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [f"{p} {r}" for p, r in sentences(400)]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=4096
    )
    fast.chat_template = CHAT_TEMPLATE
    if save_dir is not None:
        fast.save_pretrained(save_dir)
    return fast


def make_model(tokenizer: Any, save_dir: Path | None = None, seed: int = 0, **overrides: Any) -> Any:
    """A two-layer Llama (hidden 64; `overrides` set any config field) sized to the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    sizes: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "tie_word_embeddings": False,
    }
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **(sizes | overrides),
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    if save_dir is not None:
        model.save_pretrained(save_dir)
        tokenizer.save_pretrained(save_dir)
    return model


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def instruction_rows(count: int = 256, seed: int = 0) -> list[dict[str, Any]]:
    return [{"prompt": p, "response": r} for p, r in sentences(count, seed)]


REFERENCE_ROWS = 8


def write_reference_set(path: Path) -> Path:
    """Prompts with their expected answers (``prompt``, ``response``), drawn like the training rows but
    with another seed, for a BenchmarkSweep's ``quality.referenceSet``."""
    return write_jsonl(path, instruction_rows(REFERENCE_ROWS, seed=1))


def reference_quality(uri: str) -> dict[str, Any]:
    """A sweep's ``quality`` section over the reference set at ``uri``: each point pod scores its
    target's greedy answers by ROUGE-L. The floor of 0 shows the scoring and its judgement without
    gating on what a tiny model answers."""
    return {
        "referenceSet": {
            "uri": uri,
            "referenceField": "response",
            "metrics": ["rougeL"],
            "maxNewTokens": 16,
            "maxRows": REFERENCE_ROWS,
        },
        "floors": {"rougeL": 0.0},
    }


def chat_rows(count: int = 256, seed: int = 0) -> list[dict[str, Any]]:
    return [
        {"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": r}]}
        for p, r in sentences(count, seed)
    ]


def pretrain_rows(count: int = 256, seed: int = 0) -> list[dict[str, Any]]:
    return [{"text": f"{p} {r}"} for p, r in sentences(count, seed)]


def dpo_rows(count: int = 256, seed: int = 0) -> list[dict[str, Any]]:
    """Preference pairs: the chosen answer follows the pattern, the rejected one does not."""
    rng = random.Random(seed + 1)
    rows = []
    for prompt, response in sentences(count, seed):
        wrong = f"I saw {rng.choice(_ANIMALS)} {rng.choice(_COLOURS)} maybe."
        rows.append({"prompt": prompt, "chosen": response, "rejected": wrong})
    return rows
