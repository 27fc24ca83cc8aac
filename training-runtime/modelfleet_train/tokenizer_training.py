"""Method `tokenizer`: a tokenizer trained on the data set's text with Hugging Face `tokenizers`.

Rank 0 alone reads the rows (the job runs one worker; other ranks of a local run have nothing to do),
feeds their `fields.text` column to the trainer of the chosen algorithm, and writes the result as a
`transformers` tokenizer (`tokenizer.json` and its config, loadable with `AutoTokenizer`) to
`output.uri`. Each algorithm comes with the pipeline its usual models use:

- `bpe`: byte-level BPE (GPT-2, Llama 3): every byte is a token, so any text is spelt without an
  unknown token, and no normalisation;
- `unigram`: SentencePiece's unigram model: NFKC normalisation, spaces as `▁` (Metaspace);
- `wordpiece`: BERT's: lower-cased, split on whitespace and punctuation, `##` continuations.

With `add_special_tokens` the tokenizer puts `bos` in front of a text, as Llama's do; the training
runtime adds `bos` and `eos` itself. While the rows are read, rank 0 reports them as its progress
(documents read out of the data set's), so the operator's stall timer sees the job alive.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelfleet_api.lineage import OutputKind, TrainingResult
from modelfleet_api.runtime_config import TrainingProgress, TrainingRuntimeConfig
from modelfleet_api.training import TokenizerAlgorithm, TokenizerSpec

from modelfleet_train import data, storage
from modelfleet_train.model_loading import cache_root
from modelfleet_train.progress import ProgressPublisher

log = logging.getLogger(__name__)

BATCH_ROWS = 1000
"""Rows handed to the trainer at once."""
DEFAULT_MIN_FREQUENCY = 2


def special_tokens(spec: TokenizerSpec) -> list[str]:
    """The special tokens in id order: pad, bos, eos, unk (not for byte-level BPE), the additional."""
    tokens = spec.special_tokens
    unk = [] if spec.algorithm == TokenizerAlgorithm.BPE else [tokens.unk]
    return [tokens.pad, tokens.bos, tokens.eos, *unk, *tokens.additional]


def pipeline(spec: TokenizerSpec) -> tuple[Any, Any]:
    """An untrained tokenizer of the algorithm, with its normaliser, pre-tokenizer and decoder, and the
    trainer that learns its vocabulary."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    trainer: trainers.Trainer
    specials, vocab_size = special_tokens(spec), spec.vocab_size
    min_frequency = spec.min_frequency or DEFAULT_MIN_FREQUENCY
    if spec.algorithm == TokenizerAlgorithm.BPE:
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=min_frequency,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
    elif spec.algorithm == TokenizerAlgorithm.UNIGRAM:
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.NFKC()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(
            vocab_size=vocab_size,
            special_tokens=specials,
            unk_token=spec.special_tokens.unk,
            show_progress=False,
        )
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=spec.special_tokens.unk))
        tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials, show_progress=False
        )
    return tokenizer, trainer


def with_bos(tokenizer: Any, spec: TokenizerSpec) -> None:
    """Put `bos` in front of each text when special tokens are added (after training: it needs the id)."""
    from tokenizers import processors

    bos = spec.special_tokens.bos
    template = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
    )
    if spec.algorithm == TokenizerAlgorithm.BPE:  # byte-level offsets stay those of the text
        tokenizer.post_processor = processors.Sequence([processors.ByteLevel(trim_offsets=False), template])
    else:
        tokenizer.post_processor = template


def as_transformers(tokenizer: Any, spec: TokenizerSpec) -> Any:
    """The trained tokenizer as `transformers` saves and loads it, its special tokens named."""
    from transformers import PreTrainedTokenizerFast

    tokens = spec.special_tokens
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=tokens.pad,
        bos_token=tokens.bos,
        eos_token=tokens.eos,
        unk_token=None if spec.algorithm == TokenizerAlgorithm.BPE else tokens.unk,
        additional_special_tokens=list(tokens.additional),
        model_max_length=spec.model_max_length,
    )
    if spec.chat_template is not None:
        fast.chat_template = spec.chat_template
    return fast


class _TextFeed:
    """The text column in batches, counting the rows read and reporting them as progress."""

    def __init__(self, rows: Any, column: str, publisher: ProgressPublisher | None) -> None:
        self.rows, self.column, self.publisher = rows, column, publisher
        self.read = 0

    def __iter__(self) -> Iterator[list[str]]:
        for batch in self.rows.iter(batch_size=BATCH_ROWS):
            self.read += len(batch[self.column])
            if self.publisher:
                self.publisher.submit(progress(self.read, len(self.rows)))
            yield [text for text in batch[self.column] if text]


def progress(read: int, rows: int, result: TrainingResult | None = None) -> TrainingProgress:
    """A tokenizer job's progress: documents read out of the data set's."""
    return TrainingProgress(step=read, total_steps=rows, updated_at=datetime.now(UTC), result=result)


def train_tokenizer(config: TrainingRuntimeConfig, target: Path, publisher: ProgressPublisher | None) -> int:
    """Train on the data set and save the tokenizer to `target`; returns the rows read."""
    spec = config.method.tokenizer or TokenizerSpec()
    source = config.dataset
    rows = data.load_raw(source, cache_root())
    column = source.fields.text
    if column not in rows.column_names:
        raise ValueError(
            f"dataset.fields.text: column {column!r} not in the dataset (it has {rows.column_names})"
        )
    tokenizer, trainer = pipeline(spec)
    feed = _TextFeed(rows, column, publisher)
    log.info("training a %s tokenizer of %d tokens on %d rows", spec.algorithm, spec.vocab_size, len(rows))
    tokenizer.train_from_iterator(feed, trainer=trainer, length=len(rows))
    with_bos(tokenizer, spec)
    trained = as_transformers(tokenizer, spec)
    target.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(target)
    log.info("saved a tokenizer of %d tokens to %s", len(trained), target)
    return feed.read


def run(config: TrainingRuntimeConfig) -> None:
    """The tokenizer job on this process: rank 0 trains and writes; any other rank has nothing to do."""
    from modelfleet_train.trainer import output_dir

    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        log.info("rank %d: method tokenizer runs on rank 0 alone", rank)
        return
    publisher = ProgressPublisher.from_env()
    try:
        target = output_dir(config)
        read = train_tokenizer(config, target, publisher)
        if storage.is_blob_uri(config.output.uri):
            storage.upload_dir(target, storage.blob_location(config.output.uri))
        if publisher:  # what the operator puts in status.output
            written = TrainingResult(kind=OutputKind.TOKENIZER, uri=config.output.uri)
            publisher.submit(progress(read, read, written), force=True)
    finally:
        if publisher:
            publisher.close()
