"""Loss masks of instruction/chat/preference data, packing, collation and the resumable sampler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from modelfleet_api.training import DatasetSpec
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


def test_each_rank_tokenizes_a_contiguous_share_and_all_shares_cover_every_row(tokenizer: Any) -> None:
    import datasets

    raw = datasets.Dataset.from_list(tinymodel.instruction_rows(11))
    shares = [data.rank_share(raw, rank, 3) for rank in range(3)]
    assert [len(s) for s in shares] == [4, 4, 3]
    assert [row for share in shares for row in share.to_list()] == raw.to_list()
    tokenized = data.tokenize(shares[2], tokenizer, data.TrainingMethod.FULL, data.DatasetFields(), 64)
    assert len(tokenized) == 3  # this rank tokenized its three rows, not eleven


def test_pretraining_chunks_long_documents_without_dropping_a_token(tokenizer: Any) -> None:
    import datasets

    documents = [" ".join(p + " " + r for p, r in tinymodel.sentences(12, seed=s)) for s in range(3)]
    raw = datasets.Dataset.from_list([{"text": d} for d in [*documents, "Short one."]])
    tokenized = data.tokenize(raw, tokenizer, data.TrainingMethod.PRETRAIN, data.DatasetFields(), 32)
    rows = tokenized.to_list()
    assert all(len(r["input_ids"]) <= 32 and r["labels"] == r["input_ids"] for r in rows)
    expected = [
        t
        for text in [*documents, "Short one."]
        for t in [
            tokenizer.bos_token_id,
            *tokenizer(text, add_special_tokens=False)["input_ids"],
            tokenizer.eos_token_id,
        ]
    ]
    assert [t for r in rows for t in r["input_ids"]] == expected  # every token, in order
    assert len(rows) > len(raw)  # the long documents became several sequences each
    assert tokenizer.decode(rows[-1]["input_ids"]) == "<|bos|>Short one.<|eos|>"


def test_sampler_is_deterministic_reshuffles_per_epoch_and_resumes_mid_run() -> None:
    sampler = data.ResumableSampler(rows=11, batch_size=2, seed=3, batches_per_epoch=5)
    stream = sampler.micro_batches(0)
    straight = [next(stream) for _ in range(12)]  # 5 batches per epoch: crosses two epoch boundaries
    assert straight[:5] == data.ResumableSampler(11, 2, seed=3, batches_per_epoch=5).epoch_batches(0)
    assert straight[:5] != straight[5:10]
    assert all(len(set(i for b in straight[e : e + 5] for i in b)) == 10 for e in (0, 5))  # no repeats
    resumed = sampler.micro_batches(7)
    assert [next(resumed) for _ in range(5)] == straight[7:12]


def test_ranks_take_as_many_batches_as_the_smallest_share_fills() -> None:
    # shares of 7 and 6 rows fill 3 batches of 2 each; 4 rows only 2: every rank then takes 2 per epoch
    batches = min(data.ResumableSampler.batches_in(rows, 2) for rows in (7, 6, 4))
    samplers = [data.ResumableSampler(rows, 2, seed=1, batches_per_epoch=batches) for rows in (7, 6, 4)]
    assert [len(s.epoch_batches(0)) for s in samplers] == [2, 2, 2]


def test_sampler_rejects_a_share_too_small_for_one_batch() -> None:
    with pytest.raises(ValueError, match=r"hyperparameters\.perDeviceBatchSize"):
        data.ResumableSampler(rows=1, batch_size=2, seed=0, batches_per_epoch=0)


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
    spec = DatasetSpec(uri=str(path), format=data_format)
    assert data.load_raw(spec, tmp_path / "downloads").to_list() == rows


def test_hf_format_reads_a_local_copy_of_a_hub_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`hf` reads a hub id, or offline a local copy: a `save_to_disk` directory (as `prepare` writes
    it, a DatasetDict or one Dataset) or a repository snapshot (data files plus the README's config)."""
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    rows = tinymodel.instruction_rows(6)
    reference = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train": reference, "test": reference.select([0])}).save_to_disk(
        str(tmp_path / "dict")
    )
    reference.save_to_disk(str(tmp_path / "single"))
    snapshot = tmp_path / "snapshot"
    (snapshot / "data").mkdir(parents=True)
    reference.to_parquet(str(snapshot / "data" / "train-00000-of-00001.parquet"))
    (snapshot / "README.md").write_text(
        "---\nconfigs:\n- config_name: default\n  data_files:\n"
        "  - split: train\n    path: data/train-*\n---\n"
    )
    for directory in ("dict", "single", "snapshot"):
        spec = DatasetSpec(uri=str(tmp_path / directory), format="hf")
        assert data.load_raw(spec, tmp_path / "downloads").to_list() == rows, directory
    with pytest.raises(ValueError, match=r"dataset.split: 'validation' not in .* \['test', 'train'\]"):
        data.load_raw(DatasetSpec(uri=str(tmp_path / "dict"), format="hf", split="validation"), tmp_path)
