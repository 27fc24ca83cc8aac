"""The training loop every rank runs.

Hand-written rather than transformers' Trainer or trl's trainers because the runtime must own what
those hide: one loop for three strategies (DDP, FSDP2, DeepSpeed), atomic checkpoints to PVC or
blob with exact resume (RNG and data position included), SIGTERM-triggered saves, and progress
reports to the TrainingJob status.
"""

from __future__ import annotations

import gc
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from modelfleet_api import contract
from modelfleet_api.evaluation import EvaluationPoint, EvaluationStatus
from modelfleet_api.lineage import MERGED_SUBDIR, EvaluationSummary, OutputKind, TrainingResult, merged_uri
from modelfleet_api.runtime_config import TrainingProgress, TrainingRuntimeConfig
from modelfleet_api.training import AdapterBackend, DatasetFormat, OutputSelect, checkpoint_location

from modelfleet_train import data, distributed, storage, streaming
from modelfleet_train.checkpoints import Checkpointer, TrainerState, open_store
from modelfleet_train.distributed import DistContext
from modelfleet_train.evaluation import final
from modelfleet_train.evaluation.heldout import EvaluationHistory, HeldOutEvaluator
from modelfleet_train.merge import merge_adapter
from modelfleet_train.methods import build_objective, frozen_reference, prepare_model, uses_adapters
from modelfleet_train.methods.unsloth import unsloth_model
from modelfleet_train.metrics import MetricsReporter, StepRecord, flops_per_token, peak_flops
from modelfleet_train.model_init import announce, init_path
from modelfleet_train.model_loading import cache_root, load_model, load_tokenizer, resolve, tokenizer_source
from modelfleet_train.node_cache import pod_scratch
from modelfleet_train.progress import ProgressPublisher
from modelfleet_train.signals import StopRequest
from modelfleet_train.strategies import Strategy, build_strategy
from modelfleet_train.telemetry import TelemetrySampler, gpu_names
from modelfleet_train.tracking import EVAL_SECTION, RunStatus, Trackers

log = logging.getLogger(__name__)

METRICS_FILE = "training_metrics.jsonl"
EVALUATION_FILE = "evaluation.json"
"""Written beside the model: its evaluation figures (`lineage.EvaluationSummary` on the wire)."""
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


@dataclass
class RunResult:
    final_step: int
    preempted: bool


def output_dir(config: TrainingRuntimeConfig) -> Path:
    """Local directory for the final model and the metrics file (a staging area for blob outputs)."""
    if storage.is_blob_uri(config.output.uri):
        return pod_scratch(cache_root()) / "output"
    return storage.local_path(config.output.uri)


def checkpoint_uri(config: TrainingRuntimeConfig) -> str:
    return checkpoint_location(config.checkpoint, config.output)


def count_tokens(batch: dict[str, torch.Tensor]) -> tuple[int, int]:
    """(non-padding tokens, sequences) of a micro-batch."""
    masks = [v for k, v in batch.items() if k.endswith("attention_mask")]
    if masks:
        return int(sum(m.sum() for m in masks)), int(masks[0].shape[0]) * len(masks)
    return int(batch["input_ids"].numel()), int(batch["input_ids"].shape[0])


class Trainer:
    def __init__(self, config: TrainingRuntimeConfig, ctx: DistContext) -> None:
        self.config, self.ctx = config, ctx
        self.hp = config.hyperparameters
        self.stop = StopRequest().install()
        self._reference: torch.nn.Module | None = None
        """DPO's frozen reference model, placed by the strategy (``_strategy``); None for other methods."""

    def run(self) -> RunResult:
        from transformers import set_seed

        set_seed(self.hp.seed)
        attempt = os.environ.get(contract.ENV_RESTART_ATTEMPT, "0")
        log.info(
            "job %s/%s, restart attempt %s, rank %d of %d",
            self.config.job.namespace,
            self.config.job.name,
            attempt,
            self.ctx.rank,
            self.ctx.world_size,
        )
        if self.ctx.is_local_main:  # one download per node; the other ranks then read the cache
            resolve(self.config.base_model)
            resolve(tokenizer_source(self.config.base_model))
            for source in self._data_sources():
                if source.format != DatasetFormat.HF:
                    data.materialize(source.uri, cache_root())
        if self.ctx.is_main:  # what the final model's scores read: checked before any training
            final.check_ready(self.config, cache_root())
        distributed.barrier()
        tokenizer = load_tokenizer(self.config.base_model)
        dataset, held_out = self._datasets(tokenizer)
        batch_size = self.hp.per_device_batch_size
        sampler = None
        if dataset is not None:
            sampler = data.ResumableSampler(
                len(dataset),
                batch_size,
                self.hp.seed,
                distributed.min_across_ranks(
                    data.ResumableSampler.batches_in(len(dataset), batch_size), self.ctx.device
                ),
            )
        total_steps = self.hp.max_steps or max(
            1, self.hp.epochs * self._batches_per_epoch(sampler) // self.hp.gradient_accumulation_steps
        )
        strategy = self._strategy(total_steps, tokenizer)
        objective = build_objective(self.config, self._reference, tokenizer.pad_token_id)

        checkpointer = Checkpointer(
            open_store(checkpoint_uri(self.config), pod_scratch(cache_root()) / "checkpoint-staging"),
            self.ctx,
            self.config.checkpoint.keep_last,
        )
        state = checkpointer.restore(strategy, self.config.job.uid)
        step = state.step if state else 0
        history = EvaluationHistory.from_state(state.evaluation if state else None)
        multiple = 8 if self.ctx.device.type == "cuda" else 1
        collator = data.Collator(tokenizer.pad_token_id, multiple)
        evaluator = (
            HeldOutEvaluator(held_out, batch_size, collator, objective, self.ctx)
            if held_out is not None
            else None
        )
        stream = self._micro_batches(dataset, sampler, collator, tokenizer, step, state)
        reporting = (
            _Reporting(self.config, self.ctx, strategy, total_steps, history.status)
            if self.ctx.is_main
            else None
        )
        try:
            while step < total_steps:
                started = time.perf_counter()
                rank_loss, rank_tokens, rank_samples, extra = self._train_step(strategy, objective, stream)
                lr = strategy.learning_rate()  # read before the step advances the schedule
                grad_norm = strategy.optimizer_step()
                step += 1
                loss, tokens, samples = distributed.mean_across_ranks(
                    [rank_loss, rank_tokens, rank_samples], self.ctx.device
                )
                seconds = time.perf_counter() - started
                consumed = step * self.hp.gradient_accumulation_steps
                if reporting:
                    reporting.step(
                        step,
                        loss,
                        lr,
                        grad_norm,
                        round(tokens * self.ctx.world_size),
                        round(samples * self.ctx.world_size),
                        seconds,
                        consumed / sampler.batches_per_epoch if sampler else None,
                        extra,
                    )
                stopping = distributed.any_rank(self.stop.requested, self.ctx.device)
                if evaluator and not stopping and self._evaluation_due(step, total_steps):
                    point, eval_seconds = evaluator.evaluate(strategy, step)
                    history.record(point)
                    if reporting:
                        reporting.evaluation(point, history.status, eval_seconds)
                if stopping or step % self.config.checkpoint.interval_steps == 0 or step == total_steps:
                    uri, save_seconds, size = checkpointer.save(
                        strategy,
                        TrainerState(
                            step,
                            consumed,
                            self.ctx.world_size,
                            total_steps,
                            self.config.job.uid,
                            history.to_state(),
                            _stream_positions(stream),
                        ),
                        protect=history.best_step if self._selects_best else None,
                    )
                    if reporting:
                        reporting.checkpoint(step, uri, save_seconds, size)
                if stopping:
                    log.warning(
                        "stopped at step %d after a %s; checkpoint saved",
                        step,
                        self.stop.signal_name or "stop request on another rank",
                    )
                    return RunResult(step, preempted=True)
            written = step
            if self._selects_best and history.best_step not in (None, step):
                assert history.best_step is not None
                checkpointer.load_weights(strategy, history.best_step)
                written = history.best_step
            result = self._export(strategy, tokenizer, written, self._summary(history, written))
            del strategy, objective, stream, evaluator  # the final model's scores load it afresh
            self._reference = None
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if result is not None:
                result = self._score_final_model(result, tokenizer, reporting)
                if reporting:
                    reporting.finished(result)
            return RunResult(step, preempted=False)
        finally:
            if reporting:  # an exception propagating through here marks the tracked run failed
                reporting.close(step, failed=sys.exc_info()[0] is not None)

    @property
    def _selects_best(self) -> bool:
        return self.config.output.select == OutputSelect.BEST

    def _data_sources(self) -> list[Any]:
        """The training data and the held-out data set, when there is one."""
        evaluation = self.config.evaluation
        held_out = [evaluation.dataset] if evaluation is not None and evaluation.dataset is not None else []
        return [self.config.dataset, *held_out]

    def _evaluation_due(self, step: int, total_steps: int) -> bool:
        """Every `evaluation.intervalSteps` (unset: every checkpoint) and at the last step."""
        assert self.config.evaluation is not None
        interval = self.config.evaluation.interval_steps or self.config.checkpoint.interval_steps
        return step == total_steps or step % interval == 0

    def _batches_per_epoch(self, sampler: data.ResumableSampler | None) -> int:
        if sampler is None:
            raise ValueError("hyperparameters.maxSteps: a streamed data set needs it")
        return sampler.batches_per_epoch

    def _micro_batches(
        self,
        dataset: Any,
        sampler: data.ResumableSampler | None,
        collator: data.Collator,
        tokenizer: Any,
        step: int,
        state: TrainerState | None,
    ) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's micro-batches after optimizer step `step` (restored from `state`): of its
        tokenized rows in the sampler's order, or read from its share of the streamed data
        (`dataset.streaming`) from the place in it the checkpoint saved."""
        consumed = step * self.hp.gradient_accumulation_steps
        if sampler is not None:
            return data.MicroBatchStream(dataset, sampler, collator, start=consumed)
        positions = state.stream_positions if state is not None else None
        start = (0, consumed)
        if positions is not None and len(positions) == self.ctx.world_size:
            start = (positions[self.ctx.rank][0], positions[self.ctx.rank][1])
        share = streaming.rank_share(self.config.dataset, cache_root(), self.ctx.rank, self.ctx.world_size)
        fields, length = self.config.dataset.fields, self.hp.sequence_length
        return streaming.StreamedMicroBatches(
            share,
            streaming.row_tokenizer(tokenizer, self.config.method.type, fields, length),
            batch_size=self.hp.per_device_batch_size,
            collator=collator,
            seed=self.hp.seed,
            packing_length=length if self.config.dataset.packing else None,
            start=start,
            rank=self.ctx.rank,
        )

    def _datasets(self, tokenizer: Any) -> tuple[Any | None, Any | None]:
        """This rank's share of the training rows (None when they are streamed) and of the held-out rows
        (None without held-out evaluation), tokenized: each rank reads and tokenizes only its shares."""
        evaluation = self.config.evaluation
        held_raw = None  # a held-out fraction or a data set of its own, never both (the CRD's rule)
        if evaluation is not None and evaluation.dataset is not None:
            held_raw = data.load_raw(evaluation.dataset, cache_root())
        if self.config.dataset.streaming:  # held out: only a data set of its own (the config check)
            return None, self._held_out(held_raw, tokenizer)
        raw = data.load_raw(self.config.dataset, cache_root())
        if evaluation is not None and evaluation.holdout_fraction is not None:
            raw, held_raw = data.split_holdout(raw, evaluation.holdout_fraction)
        training = self._tokenized(data.rank_share(raw, self.ctx.rank, self.ctx.world_size), tokenizer)
        if self.config.dataset.packing:
            training = data.pack_dataset(training, self.hp.sequence_length)
        held_out = self._held_out(held_raw, tokenizer)
        log.info(
            "dataset: %d training rows -> %d sequences on rank %d; %s held-out rows",
            len(raw),
            len(training),
            self.ctx.rank,
            "no" if held_raw is None else f"{len(held_raw)} ({len(held_out or [])} sequences here)",
        )
        return training, held_out

    def _held_out(self, held_raw: Any | None, tokenizer: Any) -> Any | None:
        """This rank's share of the held-out rows, tokenized (None without them)."""
        if held_raw is None:
            return None
        return self._tokenized(data.rank_share(held_raw, self.ctx.rank, self.ctx.world_size), tokenizer)

    def _tokenized(self, rows: Any, tokenizer: Any) -> Any:
        fields = self.config.dataset.fields
        return data.tokenize(rows, tokenizer, self.config.method.type, fields, self.hp.sequence_length)

    def _summary(self, history: EvaluationHistory, written: int) -> EvaluationSummary | None:
        """The held-out figures of the weights written (at step `written`) and the best ones."""
        if self.config.evaluation is None:
            return None
        point, best = history.point_at(written), history.status.best
        figures = {"accuracy": point.accuracy, "margin": point.margin} if point is not None else {}
        metrics = {name: value for name, value in figures.items() if value is not None}
        return EvaluationSummary(
            eval_loss=point.loss if point else None,
            perplexity=point.perplexity if point else None,
            best_eval_loss=best.loss if best else None,
            best_step=best.step if best else None,
            metrics=metrics,
        )

    def _score_final_model(
        self, result: TrainingResult, tokenizer: Any, reporting: _Reporting | None
    ) -> TrainingResult:
        """Rank 0: the final model's generation and lm-eval scores added to the result, which is also
        written beside the model (`evaluation.json`)."""
        if result.evaluation is None:
            return result
        evaluation = result.evaluation
        if final.scores_final_model(self.config):
            dtype = _DTYPES[self.config.precision.value] if self.ctx.device.type == "cuda" else torch.float32
            scores = final.final_scores(
                self.config,
                output_dir(self.config),
                tokenizer,
                self.ctx.device,
                dtype,
                cache_root(),
            )
            evaluation = evaluation.model_copy(update={"metrics": {**evaluation.metrics, **scores}})
            result = result.model_copy(update={"evaluation": evaluation})
            if reporting and result.step is not None:
                reporting.final_scores(result.step, scores)
        target = output_dir(self.config) / EVALUATION_FILE
        target.write_text(json.dumps(evaluation.to_wire(), indent=2))
        if storage.is_blob_uri(self.config.output.uri):
            storage.upload_file(storage.blob_location(self.config.output.uri).child(EVALUATION_FILE), target)
        return result

    def _strategy(self, total_steps: int, tokenizer: Any) -> Strategy:
        strategy = build_strategy(self.config, self.ctx)  # first: ZeRO-3 loading needs its config live
        path = init_path(self.config, self.ctx.rank)
        announce(self.ctx.rank, path)
        dtype = _DTYPES[self.config.precision.value]
        if self.config.method.backend == AdapterBackend.UNSLOTH:
            model = unsloth_model(self.config, dtype)
        else:
            model = load_model(
                self.config.base_model, self.config.method.type, dtype, self.ctx.device, path, tokenizer
            )
            model = prepare_model(model, self.config)
        reference = frozen_reference(model, self.config)
        self._reference = strategy.wrap_frozen(reference) if reference is not None else None
        strategy.setup(model, total_steps)
        return strategy

    def _train_step(
        self, strategy: Strategy, objective: Any, stream: Any
    ) -> tuple[float, int, int, dict[str, float]]:
        """One optimizer step's micro-batches: forward and backward each, gradients synced on the last."""
        accumulation = self.hp.gradient_accumulation_steps
        total_loss, tokens, samples = 0.0, 0, 0
        extra: dict[str, float] = {}
        for micro in range(accumulation):
            batch = {k: v.to(self.ctx.device, non_blocking=True) for k, v in next(stream).items()}
            batch_tokens, batch_samples = count_tokens(batch)
            with strategy.forward_context():
                loss, scalars = objective(strategy.model, batch)
            strategy.backward(loss, last_micro_batch=micro == accumulation - 1)
            total_loss += loss.item() / accumulation
            tokens, samples = tokens + batch_tokens, samples + batch_samples
            for key, value in scalars.items():
                extra[key] = extra.get(key, 0.0) + value / accumulation
        if not math.isfinite(total_loss):
            log.warning("non-finite loss %s", total_loss)
        return total_loss, tokens, samples, extra

    def _export(
        self, strategy: Strategy, tokenizer: Any, step: int, evaluation: EvaluationSummary | None
    ) -> TrainingResult | None:
        """Write the final model (or adapter) as a transformers/peft checkpoint, with
        ``output.mergeAdapter`` the merged model under ``merged/``, then upload if blob. Rank 0 returns
        what it wrote (the others None)."""
        state_dict = strategy.full_state_dict()
        if not self.ctx.is_main:
            distributed.barrier()
            return None
        target = output_dir(self.config)
        target.mkdir(parents=True, exist_ok=True)
        model = strategy.unwrapped()
        model.save_pretrained(target, state_dict=state_dict)
        tokenizer.save_pretrained(target)
        adapter = uses_adapters(self.config)
        log.info("saved final %s to %s", "adapter" if adapter else "model", target)
        merged = None
        if adapter and self.config.output.merge_adapter:
            merge_adapter(self.config, target, target / MERGED_SUBDIR, tokenizer)
            merged = merged_uri(self.config.output.uri)
        if storage.is_blob_uri(self.config.output.uri):
            storage.upload_dir(target, storage.blob_location(self.config.output.uri))
        distributed.barrier()
        return TrainingResult(
            kind=OutputKind.ADAPTER if adapter else OutputKind.MODEL,
            uri=self.config.output.uri,
            merged_uri=merged,
            step=step,
            evaluation=evaluation,
        )


def _stream_positions(stream: Any) -> list[list[int]] | None:
    """Every rank's place in its streamed share, by rank (collective); None when nothing is streamed."""
    if not isinstance(stream, streaming.StreamedMicroBatches):
        return None
    return [list(position) for position in distributed.all_gather_object(stream.position)]


def _parameter_count(model_config: Any) -> int | None:
    """Decoder-only transformer parameters from the config (None when the config lacks the sizes)."""
    try:
        hidden, layers = model_config.hidden_size, model_config.num_hidden_layers
        vocab, intermediate = model_config.vocab_size, model_config.intermediate_size
        heads = model_config.num_attention_heads
        kv_heads = getattr(model_config, "num_key_value_heads", None) or heads
    except AttributeError:
        return None
    attention = 2 * hidden * hidden + 2 * hidden * (hidden // heads) * kv_heads
    count: int = layers * (attention + 3 * hidden * intermediate) + 2 * vocab * hidden
    return count


class _Reporting:
    """Everything rank 0 reports: metrics, progress, tracking, telemetry."""

    def __init__(
        self,
        config: TrainingRuntimeConfig,
        ctx: DistContext,
        strategy: Strategy,
        total_steps: int,
        evaluation: EvaluationStatus,
    ) -> None:
        self.total_steps = total_steps
        self.evaluation_status = evaluation if evaluation.latest else None
        """Held-out figures so far (restored from the checkpoint on a resume), sent with every progress."""
        self.telemetry = TelemetrySampler().start()
        port = MetricsReporter.port_from_env()
        try:
            self.metrics = MetricsReporter(
                output_dir(config) / METRICS_FILE,
                port,
                config.tracking.pushgateway_url,
                {"namespace": config.job.namespace, "trainingjob": config.job.name},
            )
        except OSError as error:  # a taken port must not stop training
            log.warning("metrics endpoint on port %s unavailable (%s); serving none", port, error)
            self.metrics = MetricsReporter(
                output_dir(config) / METRICS_FILE,
                None,
                config.tracking.pushgateway_url,
                {"namespace": config.job.namespace, "trainingjob": config.job.name},
            )
        self.progress = ProgressPublisher.from_env()
        self.config = config
        self.trackers = Trackers.start(config, output_dir(config))
        model_config = strategy.unwrapped().config
        # under FSDP/ZeRO-3 parameters are sharded: config sizes give the whole model's count
        parameters = _parameter_count(model_config) or sum(
            p.numel() for p in strategy.unwrapped().parameters()
        )
        self.flops_per_token = flops_per_token(
            parameters,
            getattr(model_config, "num_hidden_layers", 0),
            getattr(model_config, "hidden_size", 0),
            config.hyperparameters.sequence_length,
        )
        self.peak = peak_flops(gpu_names(), config.precision.value)
        self.world_size = ctx.world_size
        self.started = time.monotonic()
        self.last: TrainingProgress | None = None
        self.last_checkpoint: tuple[str, int] | None = None

    def step(
        self,
        step: int,
        loss: float,
        lr: float,
        grad_norm: float | None,
        tokens: int,
        samples: int,
        seconds: float,
        epoch: float | None,
        extra: dict[str, float],
    ) -> None:
        """Report one optimizer step; `tokens` and `samples` are totals over all ranks."""
        tokens_per_second = tokens / seconds
        mfu = (
            (tokens_per_second * self.flops_per_token / (self.peak * self.world_size)) if self.peak else None
        )
        record = StepRecord(
            step,
            loss,
            lr,
            grad_norm,
            tokens_per_second,
            samples / seconds,
            mfu,
            epoch,
            tokens,
            seconds,
            time.monotonic() - self.started,
            extra,
        )
        self.metrics.record_step(record, self.telemetry.latest())
        log.info(
            "step %d/%d loss %.4f lr %.3g tokens/s %.0f", step, self.total_steps, loss, lr, tokens_per_second
        )
        self.trackers.log_step(
            step,
            {
                "loss": loss,
                "learning_rate": lr,
                "grad_norm": grad_norm,
                "tokens_per_second": tokens_per_second,
                "mfu": mfu,
                **extra,
            },
        )
        self.last = self._progress(step, loss, lr, tokens_per_second, epoch, seconds)
        if self.progress:
            self.progress.submit(self.last)

    def checkpoint(self, step: int, uri: str, seconds: float, size: int) -> None:
        self.last_checkpoint = (uri, step)
        self.metrics.record_checkpoint(step, uri, seconds, size)
        log.info("checkpoint %s: %.2f s, %.1f MB", uri, seconds, size / 1e6)
        if self.last:
            self.last = self.last.model_copy(
                update={
                    "last_checkpoint": uri,
                    "last_checkpoint_step": step,
                    "checkpoint_seconds": seconds,
                    "updated_at": datetime.now(UTC),
                }
            )
            if self.progress:
                self.progress.submit(self.last, force=True)

    def evaluation(self, point: EvaluationPoint, status: EvaluationStatus, seconds: float) -> None:
        """Report a held-out measurement (and the best so far) on every channel."""
        self.evaluation_status = status
        self.metrics.record_evaluation(point, status, seconds)
        log.info(
            "step %d eval loss %.4f%s (best %.4f at step %d), %.1f s",
            point.step,
            point.loss,
            f" perplexity {point.perplexity:.3f}" if point.perplexity is not None else "",
            status.best.loss if status.best else point.loss,
            status.best.step if status.best else point.step,
            seconds,
        )
        self.trackers.log_step(
            point.step,
            {
                "loss": point.loss,
                "perplexity": point.perplexity,
                "accuracy": point.accuracy,
                "margin": point.margin,
            },
            section=EVAL_SECTION,
        )
        if self.last:
            self.last = self.last.model_copy(update={"evaluation": status, "updated_at": datetime.now(UTC)})
            if self.progress:
                self.progress.submit(self.last, force=True)

    def final_scores(self, step: int, scores: dict[str, float]) -> None:
        """Report the final model's generation and lm-eval scores."""
        self.metrics.record_final_scores(step, scores)
        self.trackers.log_step(step, dict(scores), section=EVAL_SECTION)

    def _progress(
        self,
        step: int,
        loss: float | None,
        lr: float | None,
        tokens_per_second: float | None,
        epoch: float | None,
        step_seconds: float,
    ) -> TrainingProgress:
        uri, checkpoint_step = self.last_checkpoint or (None, None)
        return TrainingProgress(
            step=step,
            total_steps=self.total_steps,
            epoch=epoch,
            loss=loss,
            learning_rate=lr,
            tokens_per_second=tokens_per_second,
            last_checkpoint=uri,
            last_checkpoint_step=checkpoint_step,
            evaluation=self.evaluation_status,
            step_seconds=step_seconds,
            checkpoint_seconds=self.last.checkpoint_seconds if self.last else None,
            updated_at=datetime.now(UTC),
        )

    def finished(self, result: TrainingResult) -> None:
        """What training wrote, in the last progress (the operator's ``status.output``)."""
        if self.last:
            self.last = self.last.model_copy(update={"result": result, "updated_at": datetime.now(UTC)})

    def close(self, step: int, failed: bool) -> None:
        self.telemetry.stop()
        if self.progress:
            if self.last:
                self.progress.submit(self.last, force=True)
            self.progress.close()
        finished = RunStatus.FINISHED if step >= self.total_steps else RunStatus.KILLED
        self.trackers.close(RunStatus.FAILED if failed else finished)
        if storage.is_blob_uri(self.config.output.uri):  # offline runs go where the model goes
            target = storage.blob_location(self.config.output.uri)
            for directory in self.trackers.offline_dirs():
                try:
                    storage.upload_dir(directory, target.child(directory.name))
                except Exception as error:
                    log.warning("uploading the offline %s run failed: %s", directory.name, error)
        self.metrics.close()
