"""`dataset.streaming`: each rank reads and tokenizes only its share of the rows, as training consumes
them, instead of loading the whole set first.

A rank's share is decided before anything is read: of a `jsonl` or `parquet` source whose file count
is a multiple of the world size, every world-size-th file (rank r opens files r, r + w, ...; no other
rank opens them); of a single file, or a count that does not divide, every world-size-th row (each rank
reads the files and keeps its rows); of a hub dataset, what `datasets.distributed.split_dataset_by_node`
gives (whole shards when they divide, else rows); of a saved Dataset (`arrow`, a `save_to_disk`
copy), a contiguous range of its rows. Every rank logs what it reads.

The share is shuffled in a buffer of `SHUFFLE_BUFFER` rows (and the shard order with it), reseeded with
`hyperparameters.seed` + the pass number, tokenized row by row (`data.row_examples`), packed when
`dataset.packing` asks, and cut into micro-batches; a last batch the pass cannot fill is dropped. A rank
that reaches the end of its share logs the rows it read and starts the next pass. A resumed run reads
the micro-batches it consumed in its current pass again (each rank's pass and place in it are saved with
every checkpoint), without training on them, so it continues on exactly the batches the run would have
had. With no saved place (the world size changed, so the shares did too), it reads from the start of
the first pass as many micro-batches as the run consumed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from modelfleet_api.training import DatasetFields, DatasetFormat, DatasetSpec, TrainingMethod

from modelfleet_train import data

log = logging.getLogger(__name__)
"""At INFO on every rank (cli): which rows a rank reads is each rank's own."""

SHUFFLE_BUFFER = 10_000
"""Rows a rank holds to shuffle its stream (the shard order is shuffled too)."""

Example = dict[str, list[int]]


def rank_share(spec: DatasetSpec, cache_root: Path, rank: int, world_size: int) -> Any:
    """This rank's share of the data as a `datasets.IterableDataset` (logged: what the rank reads)."""
    share, what = _share(spec, cache_root, rank, world_size)
    log.info("rank %d streams %s", rank, what)
    return share


def _share(spec: DatasetSpec, cache_root: Path, rank: int, world_size: int) -> tuple[Any, str]:
    import datasets
    from datasets.distributed import split_dataset_by_node

    if spec.format in (DatasetFormat.JSONL, DatasetFormat.PARQUET):
        builder, files = data.source_files(spec, cache_root)
        whole_files = len(files) % world_size == 0
        mine = files[rank::world_size] if whole_files else files
        stream = datasets.load_dataset(
            builder, data_files={spec.split: mine}, split=spec.split, streaming=True
        )
        if whole_files:
            return stream, f"{len(mine)} of {len(files)} files: {', '.join(Path(f).name for f in mine)}"
        what = f"{_every_other(rank, world_size)} of {len(files)} file(s)"
        return split_dataset_by_node(stream, rank=rank, world_size=world_size), what
    loaded = data.load_raw(spec, cache_root, streaming=True)
    if isinstance(loaded, datasets.Dataset):  # memory-mapped: one contiguous range of rows per rank
        stream = loaded.to_iterable_dataset(num_shards=world_size)
        what = f"rows part {rank + 1} of {world_size} of {len(loaded)}"
        return split_dataset_by_node(stream, rank=rank, world_size=world_size), what
    shards = loaded.n_shards
    what = (
        f"{shards // world_size} of {shards} shards"
        if shards % world_size == 0
        else f"{_every_other(rank, world_size)} of {shards} shard(s)"
    )
    return split_dataset_by_node(loaded, rank=rank, world_size=world_size), what


def _every_other(rank: int, world_size: int) -> str:
    return f"rows {rank}, {rank + world_size}, {rank + 2 * world_size}, ..."


def row_tokenizer(
    tokenizer: Any, method: TrainingMethod, fields: DatasetFields, max_length: int
) -> Callable[[dict[str, Any]], list[Example]]:
    """`data.row_examples` of each streamed row; the columns are checked on the first row (a stream's
    columns may be unknown before it is read)."""
    checked = False

    def to_examples(row: dict[str, Any]) -> list[Example]:
        nonlocal checked
        if not checked:
            data.check_columns(list(row), method, fields)
            checked = True
        return data.row_examples(row, tokenizer, method, fields, max_length)

    return to_examples


class StreamedMicroBatches:
    """This rank's collated micro-batches from its share, pass after pass, from a place in a pass on."""

    def __init__(
        self,
        share: Any,
        to_examples: Callable[[dict[str, Any]], list[Example]],
        *,
        batch_size: int,
        collator: data.Collator,
        seed: int,
        packing_length: int | None,
        start: tuple[int, int],
        rank: int,
    ) -> None:
        """`start`: (pass, micro-batches to read and drop from its beginning, on into the next passes)."""
        self._share = share.shuffle(seed=seed, buffer_size=SHUFFLE_BUFFER)
        self._to_examples, self._batch_size, self._collator = to_examples, batch_size, collator
        self._packing_length, self._rank = packing_length, rank
        self.position = start
        """(pass, micro-batches of it consumed) after the last micro-batch handed out."""
        self._batches = self._from(*start)

    def __iter__(self) -> StreamedMicroBatches:
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return self._collator(next(self._batches))

    def _from(self, epoch: int, skip: int) -> Iterator[list[Example]]:
        skipped = 0
        while True:
            filled = 0
            for batch in self._pass(epoch):
                filled += 1
                if skipped < skip:
                    skipped += 1
                    if skipped == skip:
                        log.info(
                            "rank %d: read the %d micro-batches consumed before the resume again",
                            self._rank,
                            skip,
                        )
                    continue
                self.position = (epoch, filled)
                yield batch
            if filled == 0:
                raise ValueError(
                    f"dataset: rank {self._rank}'s share of the streamed data cannot fill one batch of "
                    f"{self._batch_size} (hyperparameters.perDeviceBatchSize)"
                )
            epoch += 1

    def _pass(self, epoch: int) -> Iterator[list[Example]]:
        """One pass over the share, shuffled for this pass, in full micro-batches."""
        self._share.set_epoch(epoch)
        counted = {"rows": 0}

        def examples() -> Iterator[Example]:
            for row in self._share:
                counted["rows"] += 1
                yield from self._to_examples(row)

        stream = examples() if self._packing_length is None else data.packed(examples(), self._packing_length)
        batch: list[Example] = []
        for example in stream:
            batch.append(example)
            if len(batch) == self._batch_size:
                yield batch
                batch = []
        log.info("rank %d: pass %d over its share read %d rows", self._rank, epoch, counted["rows"])
