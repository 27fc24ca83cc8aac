"""Loss masks of instruction/chat/preference data, packing, collation and the resumable sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modelfleet_train import data
from modelfleet_train.data import IGNORE_INDEX

from hack import tinymodel

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return tinymodel.train_tokenizer()


def labelled_text(tokenizer: Any, example: dict[str, list[int]], prefix: str = "") -> str:
    ids = example[f"{prefix}input_ids"]
    labels = example[f"{prefix}labels"]
    return tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX])


def test_prompt_response_labels_only_the_response_and_its_end_token(tokenizer: Any) -> None:
    example = data.prompt_response(tokenizer, "How many red cats are there?", "There are 3 red cats.", 256)
    assert labelled_text(tokenizer, example) == "There are 3 red cats.<|eos|>"
    assert tokenizer.decode(example["input_ids"]).startswith("<|user|>How many red cats are there?")


def test_chat_labels_every_assistant_turn_and_nothing_else(tokenizer: Any) -> None:
    messages = [
        {"role": "system", "content": "Count animals."},
        {"role": "user", "content": "How many owls?"},
        {"role": "assistant", "content": "Two owls."},
        {"role": "user", "content": "And foxes?"},
        {"role": "assistant", "content": "One fox."},
    ]
    example = data.chat(tokenizer, messages, 512)
    assert labelled_text(tokenizer, example) == "Two owls.<|eos|>One fox.<|eos|>"


def test_preference_pairs_share_the_prompt_and_label_each_response(tokenizer: Any) -> None:
    pair = data.preference(tokenizer, "How many owls?", "Two owls.", "Purple.", 256)
    assert labelled_text(tokenizer, pair, "chosen_") == "Two owls.<|eos|>"
    assert labelled_text(tokenizer, pair, "rejected_") == "Purple.<|eos|>"


def test_truncation_and_rows_without_labels_are_dropped(tokenizer: Any) -> None:
    import datasets

    raw = datasets.Dataset.from_list(
        [
            {"prompt": "How many owls are there in this very long question?", "response": "Two."},
            {"prompt": "Hi", "response": "Hello there."},
        ]
    )
    tokenized = data.tokenize(raw, tokenizer, data.TrainingMethod.LORA, data.DatasetFields(), max_length=10)
    assert len(tokenized) == 1  # the long prompt left no response token within 10 tokens
    assert len(tokenized[0]["input_ids"]) <= 10


def test_missing_columns_are_named(tokenizer: Any) -> None:
    import datasets

    raw = datasets.Dataset.from_list([{"question": "q", "answer": "a"}])
    with pytest.raises(ValueError, match=r"dataset.fields: columns \['prompt', 'response'\]"):
        data.tokenize(raw, tokenizer, data.TrainingMethod.FULL, data.DatasetFields(), 32)


def test_packing_fills_bins_restarts_positions_and_masks_example_boundaries() -> None:
    examples = [
        {"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX, 2, 3]},
        {"input_ids": [4, 5], "labels": [4, 5]},
        {"input_ids": [6, 7, 8, 9], "labels": [6, 7, 8, 9]},
    ]
    assert data.pack(examples, sequence_length=6) == [
        {
            "input_ids": [1, 2, 3, 4, 5],
            "labels": [IGNORE_INDEX, 2, 3, IGNORE_INDEX, 5],
            "position_ids": [0, 1, 2, 0, 1],
        },
        {"input_ids": [6, 7, 8, 9], "labels": [IGNORE_INDEX, 7, 8, 9], "position_ids": [0, 1, 2, 3]},
    ]


def test_collator_pads_labels_with_ignore_and_packed_padding_as_its_own_sequence() -> None:
    collate = data.Collator(pad_token_id=0, multiple=4)
    batch = collate([{"input_ids": [5, 6, 7], "labels": [5, 6, 7]}, {"input_ids": [8], "labels": [8]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7, IGNORE_INDEX], [8] + [IGNORE_INDEX] * 3]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    packed = collate([{"input_ids": [1, 2, 3], "labels": [1, 2, 3], "position_ids": [0, 0, 1]}])
    assert packed["position_ids"].tolist() == [[0, 0, 1, 0]]
    assert "attention_mask" not in packed


def test_sampler_shards_rows_disjointly_and_equally_across_ranks() -> None:
    ranks = [data.ResumableSampler(rows=21, batch_size=2, rank=r, world_size=3, seed=1) for r in range(3)]
    epochs = [sampler.epoch_batches(0) for sampler in ranks]
    assert all(len(batches) == 3 for batches in epochs)  # 21 rows -> 18 usable, 3 batches of 2 per rank
    rows = [i for batches in epochs for batch in batches for i in batch]
    assert len(rows) == len(set(rows)) == 18


def test_sampler_is_deterministic_reshuffles_per_epoch_and_resumes_mid_run() -> None:
    sampler = data.ResumableSampler(rows=10, batch_size=2, rank=0, world_size=1, seed=3)
    stream = sampler.micro_batches(0)
    straight = [next(stream) for _ in range(12)]  # 5 batches per epoch: crosses two epoch boundaries
    assert straight[:5] == data.ResumableSampler(10, 2, 0, 1, seed=3).epoch_batches(0)
    assert straight[:5] != straight[5:10]
    resumed = sampler.micro_batches(7)
    assert [next(resumed) for _ in range(5)] == straight[7:12]


def test_sampler_rejects_data_too_small_for_one_batch_per_rank() -> None:
    with pytest.raises(ValueError, match=r"hyperparameters\.perDeviceBatchSize"):
        data.ResumableSampler(rows=3, batch_size=2, rank=0, world_size=2, seed=0)


@pytest.mark.parametrize("data_format", ["jsonl", "parquet", "arrow"])
def test_each_file_format_loads_the_same_rows(
    data_format: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    rows = tinymodel.instruction_rows(6)
    reference = datasets.Dataset.from_list(rows)
    if data_format == "jsonl":
        path = tinymodel.write_jsonl(tmp_path / "train.jsonl", rows)
    elif data_format == "parquet":
        path = tmp_path / "parquet"
        path.mkdir()
        reference.to_parquet(str(path / "part-0.parquet"))
    else:
        path = tmp_path / "saved"
        datasets.DatasetDict({"train": reference}).save_to_disk(str(path))
    spec = data.DatasetSpec(uri=str(path), format=data_format)
    assert data.load_raw(spec, tmp_path / "downloads").to_list() == rows
