"""Datasets: loading (JSONL, Parquet, Arrow, hub), tokenization with loss masks, packing, batching.

Examples become token ids plus labels in which every position the loss must ignore is -100:
instruction data keeps only the response (or the assistant turns of a chat) in the labels, so the
model learns to answer rather than to repeat prompts. Preference pairs keep prompt+chosen and
prompt+rejected side by side for DPO and reward models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.training import (
    PREFERENCE_METHODS,
    DatasetFields,
    DatasetFormat,
    DatasetSource,
    TrainingMethod,
)

from modelfleet_train import storage
from modelfleet_train.node_cache import NodeCache

log = logging.getLogger(__name__)

IGNORE_INDEX = -100
"""Label value that PyTorch's cross-entropy (and transformers' loss) skips."""

_BUILDERS = {DatasetFormat.JSONL: ("json", "*.jsonl"), DatasetFormat.PARQUET: ("parquet", "*.parquet")}
_FILE_SUFFIXES = {".jsonl", ".json", ".parquet"}


def materialize(uri: str, cache_root: Path) -> Path:
    """A local path holding the data at `uri` (blob URIs are downloaded once into the node cache at
    `cache_root`)."""
    if not storage.is_blob_uri(uri):
        return storage.local_path(uri)
    location = storage.blob_location(uri)
    name = Path(location.prefix).name
    single_file = Path(location.prefix).suffix in _FILE_SUFFIXES

    def fetch(target: Path) -> None:
        if single_file:
            storage.download_file(location, target / name)
        else:
            storage.download_prefix(location, target)

    target = NodeCache.from_env(cache_root).fill("datasets", uri, fetch)
    return target / name if single_file else target


def load_raw(spec: DatasetSource, cache_root: Path, streaming: bool = False) -> Any:
    """The split to read as a `datasets.Dataset`; with `streaming`, a hub dataset (or a repository
    snapshot of one) as an `IterableDataset` read as it is consumed (a saved Dataset is memory-mapped,
    so it stays one: nothing of it is read before it is used)."""
    import datasets

    if spec.format == DatasetFormat.HF:
        return _load_hf(spec, streaming)
    if spec.format == DatasetFormat.ARROW:
        loaded = datasets.load_from_disk(str(_existing(spec, cache_root)))
        return loaded[spec.split] if isinstance(loaded, datasets.DatasetDict) else loaded
    builder, files = source_files(spec, cache_root)
    return datasets.load_dataset(
        builder, data_files={spec.split: files}, split=spec.split, streaming=streaming
    )


def source_files(spec: DatasetSource, cache_root: Path) -> tuple[str, list[str]]:
    """The `datasets` builder of a `jsonl` or `parquet` source and its files, sorted by name."""
    path = _existing(spec, cache_root)
    builder, pattern = _BUILDERS[spec.format]
    files = sorted(str(p) for p in path.glob(pattern)) if path.is_dir() else [str(path)]
    if not files:
        raise FileNotFoundError(f"dataset.uri: no {pattern} files under {path}")
    return builder, files


def _existing(spec: DatasetSource, cache_root: Path) -> Path:
    path = materialize(spec.uri, cache_root)
    if not path.exists():
        raise FileNotFoundError(f"dataset.uri: {path} does not exist")
    return path


def _load_hf(spec: DatasetSource, streaming: bool) -> Any:
    """A hub dataset by id, or a local copy of one: a repository snapshot (data files and its README's
    config, as `snapshot_download` leaves it) or a `save_to_disk` directory (what `prepare` writes)."""
    import datasets

    if storage.is_local_uri(spec.uri):
        path = storage.local_path(spec.uri)
        if not path.exists():
            raise FileNotFoundError(f"dataset.uri: {path} does not exist")
        if (path / datasets.config.DATASET_STATE_JSON_FILENAME).exists() or (
            path / datasets.config.DATASETDICT_JSON_FILENAME
        ).exists():
            loaded = datasets.load_from_disk(str(path))
            if isinstance(loaded, datasets.DatasetDict):
                if spec.split not in loaded:
                    raise ValueError(f"dataset.split: {spec.split!r} not in {path} (it has {sorted(loaded)})")
                return loaded[spec.split]
            return loaded
        return datasets.load_dataset(str(path), split=spec.split, streaming=streaming)
    return datasets.load_dataset(spec.uri, split=spec.split, streaming=streaming)


def _chat_text(tokenizer: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    text: str = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=generation_prompt
    )
    return text


def _ids(tokenizer: Any, text: str) -> list[int]:
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The prompt as the model sees it before answering: chat-templated when the tokenizer has a template."""
    if tokenizer.chat_template:
        return _ids(tokenizer, _chat_text(tokenizer, [{"role": "user", "content": prompt}], True))
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return bos + _ids(tokenizer, prompt)


def prompt_response(tokenizer: Any, prompt: str, response: str, max_length: int) -> dict[str, list[int]]:
    """Tokens of prompt+response with labels on the response only."""
    head = prompt_ids(tokenizer, prompt)
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
        full = _ids(tokenizer, _chat_text(tokenizer, messages, False))
    else:
        full = head + _ids(tokenizer, response) + [tokenizer.eos_token_id]
    if full[: len(head)] != head:
        raise ValueError(
            "the chat template renders the prompt differently inside a conversation; "
            "cannot mask the loss to the response"
        )
    labels = [IGNORE_INDEX] * len(head) + full[len(head) :]
    return {"input_ids": full[:max_length], "labels": labels[:max_length]}


def chat(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """Tokens of a rendered conversation with labels on the assistant turns only.

    Each assistant turn's tokens are found by rendering the conversation up to the turn with a
    generation prompt and up to its end; this relies only on the template being prefix-stable,
    so it works with templates that lack `{% generation %}` markers.
    """
    if not tokenizer.chat_template:
        raise ValueError("dataset.fields.messages needs a tokenizer with a chat template")
    full = _ids(tokenizer, _chat_text(tokenizer, messages, False))
    labels = [IGNORE_INDEX] * len(full)
    for turn, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start = len(_ids(tokenizer, _chat_text(tokenizer, messages[:turn], True)))
        end = len(_ids(tokenizer, _chat_text(tokenizer, messages[: turn + 1], False)))
        labels[start:end] = full[start:end]
    return {"input_ids": full[:max_length], "labels": labels[:max_length]}


def text_chunks(tokenizer: Any, text: str, max_length: int) -> list[dict[str, list[int]]]:
    """A document for pre-training as consecutive sequences of at most `max_length` tokens: nothing is
    dropped (a long document continues in the next sequence; the first token of each continuation
    is the only one without its context)."""
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = bos + _ids(tokenizer, text) + [tokenizer.eos_token_id]
    return [
        {"input_ids": ids[i : i + max_length], "labels": ids[i : i + max_length]}
        for i in range(0, len(ids), max_length)
    ]


def preference(
    tokenizer: Any, prompt: str, chosen: str, rejected: str, max_length: int
) -> dict[str, list[int]]:
    pair = {}
    for name, response in [("chosen", chosen), ("rejected", rejected)]:
        example = prompt_response(tokenizer, prompt, response, max_length)
        pair[f"{name}_input_ids"], pair[f"{name}_labels"] = example["input_ids"], example["labels"]
    return pair


def row_examples(
    row: dict[str, Any], tokenizer: Any, method: TrainingMethod, fields: DatasetFields, max_length: int
) -> list[dict[str, list[int]]]:
    """The training examples of one raw row: a pre-training document's sequences, a preference pair, or
    one instruction (or chat) example; none when truncation left it without a label token."""
    if method == TrainingMethod.PRETRAIN:
        return text_chunks(tokenizer, row[fields.text], max_length)
    if method in PREFERENCE_METHODS:
        example = preference(
            tokenizer, row[fields.prompt], row[fields.chosen], row[fields.rejected], max_length
        )
    elif fields.messages:
        example = chat(tokenizer, row[fields.messages], max_length)
    else:
        example = prompt_response(tokenizer, row[fields.prompt], row[fields.response], max_length)
    label_columns = [k for k in example if k.endswith("labels")]
    return [example] if all(any(t != IGNORE_INDEX for t in example[c]) for c in label_columns) else []


def check_columns(columns: list[str], method: TrainingMethod, fields: DatasetFields) -> None:
    """Raise, naming them, when columns the method reads are missing."""
    missing = [c for c in _required_columns(method, fields) if c not in columns]
    if missing:
        raise ValueError(f"dataset.fields: columns {missing} not in the dataset (it has {columns})")


def tokenize(raw: Any, tokenizer: Any, method: TrainingMethod, fields: DatasetFields, max_length: int) -> Any:
    """Map raw rows to token ids and labels (`row_examples`): rows left without any label token are
    dropped, pre-training documents longer than `max_length` become several sequences."""
    check_columns(raw.column_names, method, fields)
    keys = _example_keys(method)

    def rows_to_examples(rows: dict[str, list[Any]]) -> dict[str, list[list[int]]]:
        made = [e for row in examples(rows) for e in row_examples(row, tokenizer, method, fields, max_length)]
        return {key: [e[key] for e in made] for key in keys}

    return raw.map(rows_to_examples, batched=True, remove_columns=raw.column_names, desc="tokenize")


def _example_keys(method: TrainingMethod) -> list[str]:
    if method in PREFERENCE_METHODS:
        return [f"{side}_{key}" for side in ("chosen", "rejected") for key in ("input_ids", "labels")]
    return ["input_ids", "labels"]


HOLDOUT_SEED = 20240917
"""Seed of the held-out rows (`evaluation.holdoutFraction`): fixed rather than `hyperparameters.seed`, so
jobs on the same data that differ in their hyperparameters are evaluated on the same rows."""


def holdout_indices(rows: int, fraction: float) -> tuple[list[int], list[int]]:
    """(training rows, held-out rows) of a data set of `rows` rows, each in ascending order: a seeded
    choice of round(rows * fraction) rows (at least one, never all) is held out."""
    held = min(max(1, round(rows * fraction)), rows - 1)
    if held < 1:
        raise ValueError(f"evaluation.holdoutFraction: a data set of {rows} row(s) has none to hold out")
    order = torch.randperm(rows, generator=torch.Generator().manual_seed(HOLDOUT_SEED)).tolist()
    return sorted(order[held:]), sorted(order[:held])


def split_holdout(raw: Any, fraction: float) -> tuple[Any, Any]:
    """(training rows, held-out rows) of `raw` (see `holdout_indices`)."""
    training, held_out = holdout_indices(len(raw), fraction)
    return raw.select(training), raw.select(held_out)


def rank_share(raw: Any, rank: int, world_size: int) -> Any:
    """The contiguous part of the raw rows this rank tokenizes and trains on (sizes differ by at most
    one row), so no rank tokenizes the whole set."""
    return raw.shard(num_shards=world_size, index=rank, contiguous=True)


def _required_columns(method: TrainingMethod, fields: DatasetFields) -> list[str]:
    if method in PREFERENCE_METHODS:
        return [fields.prompt, fields.chosen, fields.rejected]
    if method == TrainingMethod.PRETRAIN:
        return [fields.text]
    return [fields.messages] if fields.messages else [fields.prompt, fields.response]


def pack(examples: Iterable[dict[str, list[int]]], sequence_length: int) -> list[dict[str, list[int]]]:
    """Every bin of `packed`."""
    return list(packed(examples, sequence_length))


def packed(examples: Iterable[dict[str, list[int]]], sequence_length: int) -> Iterator[dict[str, list[int]]]:
    """Concatenate examples, in order, into bins of at most `sequence_length` tokens, each bin yielded as
    soon as the next example does not fit (so a stream is packed as it is read).

    Position ids restart at 0 for every example, which transformers turns into a block-diagonal
    attention mask, so packed examples do not attend to each other. The first label of each
    example is masked: it would otherwise be predicted from the previous example's last token.
    """
    current: dict[str, list[int]] = {"input_ids": [], "labels": [], "position_ids": []}
    for example in examples:
        ids = example["input_ids"][:sequence_length]
        if current["input_ids"] and len(current["input_ids"]) + len(ids) > sequence_length:
            yield current
            current = {"input_ids": [], "labels": [], "position_ids": []}
        current["input_ids"] += ids
        current["labels"] += [IGNORE_INDEX, *example["labels"][1 : len(ids)]]
        current["position_ids"] += list(range(len(ids)))
    if current["input_ids"]:
        yield current


def pack_dataset(tokenized: Any, sequence_length: int) -> Any:
    import datasets

    return datasets.Dataset.from_list(pack(list(tokenized), sequence_length))


class Collator:
    """Pads a list of examples into tensors (to the longest in the batch, rounded up to `multiple`)."""

    def __init__(self, pad_token_id: int, multiple: int = 1) -> None:
        self.pad_token_id = pad_token_id
        self.multiple = multiple

    def __call__(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        if "chosen_input_ids" in examples[0]:
            batch = {}
            for side in ("chosen", "rejected"):
                part = self._pad(
                    [{"input_ids": e[f"{side}_input_ids"], "labels": e[f"{side}_labels"]} for e in examples]
                )
                batch.update({f"{side}_{key}": value for key, value in part.items()})
            return batch
        return self._pad(examples)

    def _pad(self, examples: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in examples)
        length = -(-longest // self.multiple) * self.multiple
        packed = "position_ids" in examples[0]
        columns: dict[str, list[list[int]]] = {"input_ids": [], "labels": []}
        columns["position_ids" if packed else "attention_mask"] = []
        for example in examples:
            pad = length - len(example["input_ids"])
            columns["input_ids"].append(example["input_ids"] + [self.pad_token_id] * pad)
            columns["labels"].append(example["labels"] + [IGNORE_INDEX] * pad)
            if packed:
                # the padding forms its own "sequence", so no real token attends to it
                columns["position_ids"].append(example["position_ids"] + list(range(pad)))
            else:
                columns["attention_mask"].append([1] * len(example["input_ids"]) + [0] * pad)
        return {key: torch.tensor(value, dtype=torch.long) for key, value in columns.items()}


class ResumableSampler:
    """Which of this rank's rows it reads in each micro-batch: deterministic and resumable.

    Each rank trains on its own share of the data (`rank_share`). Epoch e shuffles the rank's rows with
    seed + e and uses the first `batches_per_epoch` batches of them: the same count on every
    rank (ranks must step together), so the run's `batches_per_epoch` is the smallest any rank can
    fill. Micro-batch m of the run is batch m % batches_per_epoch of epoch m // batches_per_epoch, so
    the data position after a resume follows from the number of micro-batches already consumed.
    """

    def __init__(self, rows: int, batch_size: int, seed: int, batches_per_epoch: int) -> None:
        self.rows, self.batch_size, self.seed = rows, batch_size, seed
        self.batches_per_epoch = batches_per_epoch
        if batches_per_epoch < 1:
            raise ValueError(
                f"dataset: a rank's share of the data cannot fill one batch of {batch_size} "
                "(hyperparameters.perDeviceBatchSize)"
            )
        if batches_per_epoch * batch_size > rows:
            raise ValueError(f"{rows} rows cannot fill {batches_per_epoch} batches of {batch_size}")

    @staticmethod
    def batches_in(rows: int, batch_size: int) -> int:
        """Full batches this rank's rows can fill."""
        return rows // batch_size

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.rows, generator=generator).tolist()
        usable = order[: self.batches_per_epoch * self.batch_size]
        return [usable[i : i + self.batch_size] for i in range(0, len(usable), self.batch_size)]

    def micro_batches(self, start: int) -> Any:
        """Row indices of micro-batches start, start+1, ... (endless, epoch after epoch)."""
        epoch, offset = divmod(start, self.batches_per_epoch)
        while True:
            yield from self.epoch_batches(epoch)[offset:]
            epoch, offset = epoch + 1, 0


class MicroBatchStream:
    """Collated micro-batches for this rank, starting at a given position."""

    def __init__(self, dataset: Any, sampler: ResumableSampler, collator: Collator, start: int) -> None:
        self._dataset, self._collator = dataset, collator
        self._indices = sampler.micro_batches(start)

    def __iter__(self) -> MicroBatchStream:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return self._collator(examples(self._dataset[next(self._indices)]))


def examples(rows: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """A batch of rows as `datasets` returns it (column -> values) as a list of examples."""
    return [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(), strict=True)]
