"""Training throughput of modelfleet_train against a plain Hugging Face `Trainer`, and checkpoint speed.

Both train the same small Llama (made here, no hub) on the same tokenized data with the same batch
size, sequence length, optimizer, schedule and precision, one process each, in this run. Reported:
tokens per second of each (non-padding tokens over the time spent in optimizer steps, after
warm-up steps) and their ratio (target >= 1.0), the peak resident memory of each (the largest
process of its tree, from wait4) and their ratio (target <= 1.0; ours includes checkpoint saves and
the final export, which the Trainer run here does not do), plus checkpoint save rate in GB/s from
the runtime's own checkpoint events. Not a test: a measurement to read, not a timed assertion.

    python benchmarks/train_throughput.py [--steps 40] [--hidden 256] [--layers 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hack import tinymodel  # noqa: E402

LEARNING_RATE = 1e-3
SEED = 1

HF_TRAINER_SCRIPT = r"""
import json, sys, time
from pathlib import Path
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments
from modelfleet_api.training import DatasetFields, TrainingMethod
from modelfleet_train import data

args = json.loads(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(args["model"])
import datasets
raw = datasets.load_dataset("json", data_files={"train": [args["data"]]}, split="train")
tokenized = data.tokenize(raw, tokenizer, TrainingMethod.FULL, DatasetFields(), args["seq"])
collator = data.Collator(tokenizer.pad_token_id)
tokens = []
def collate(examples):
    batch = collator(examples)
    tokens.append(int(batch["attention_mask"].sum()))
    return batch

class Timer(TrainerCallback):
    def __init__(self): self.begin, self.durations = 0.0, []
    def on_step_begin(self, *a, **k): self.begin = time.perf_counter()
    def on_step_end(self, *a, **k): self.durations.append(time.perf_counter() - self.begin)

timer = Timer()
model = AutoModelForCausalLM.from_pretrained(args["model"], dtype=torch.float32)
training_args = TrainingArguments(
    output_dir=args["out"], per_device_train_batch_size=args["batch"], max_steps=args["steps"],
    learning_rate=args["lr"], lr_scheduler_type="cosine", weight_decay=0.0, max_grad_norm=1.0,
    optim="adamw_torch", save_strategy="no", report_to=[], logging_steps=10**6, use_cpu=True,
    dataloader_num_workers=0, seed=args["seed"], remove_unused_columns=False, disable_tqdm=True,
)
Trainer(model=model, args=training_args, train_dataset=tokenized, data_collator=collate,
        callbacks=[timer]).train()
print(json.dumps({"durations": timer.durations, "tokens": tokens[: len(timer.durations)]}))
"""


def make_assets(root: Path, hidden: int, layers: int, rows: int) -> tuple[Path, Path]:
    tokenizer = tinymodel.train_tokenizer()
    tinymodel.make_model(
        tokenizer,
        root / "model",
        hidden_size=hidden,
        intermediate_size=4 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=max(1, hidden // 64),
        num_key_value_heads=max(1, hidden // 128),
    )
    return root / "model", tinymodel.write_jsonl(root / "data.jsonl", tinymodel.instruction_rows(rows))


def environment(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFLEET_", "PET_"))}
    # torchrun sets OMP_NUM_THREADS=1 for its workers; give the Trainer the same, or the two runs
    # would differ in intra-op threads rather than in training code
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(root / "hf"),
        MODELFLEET_CACHE_DIR=str(root / "cache"),
        MODELFLEET_METRICS_PORT="0",
        TOKENIZERS_PARALLELISM="false",
        DS_ACCELERATOR="cpu",
    )
    return env


def run_modelfleet(root: Path, model: Path, data_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    import yaml

    config = {
        "job": {"name": "bench", "namespace": "bench"},
        "model": {"uri": str(model)},
        "dataset": {"uri": str(data_file), "format": "jsonl"},
        "method": {"type": "full"},
        "strategy": {"type": "ddp"},
        "precision": "fp32",
        "hyperparameters": {
            "learningRate": LEARNING_RATE,
            "lrSchedule": "cosine",
            "maxSteps": args.steps,
            "perDeviceBatchSize": args.batch,
            "sequenceLength": args.seq,
            "seed": SEED,
        },
        "checkpoint": {"intervalSteps": args.checkpoint_interval, "keepLast": 2},
        "output": {"uri": str(root / "modelfleet-out")},
        "topology": {"nodes": 1, "gpusPerNode": 1},
    }
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    torchrun = Path(sys.executable).parent / "torchrun"
    _, peak = run_measured(
        [
            str(torchrun),
            "--standalone",
            "--nproc-per-node=1",
            "-m",
            "modelfleet_train",
            "--config",
            str(config_file),
        ],
        environment(root),
    )
    metrics = (root / "modelfleet-out" / "training_metrics.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in metrics]
    steps = [e for e in events if e["event"] == "step"]
    return {
        "tokens": [e["tokens"] for e in steps],
        "durations": [e["step_seconds"] for e in steps],
        "checkpoints": [(e["bytes"], e["seconds"]) for e in events if e["event"] == "checkpoint"],
        "peak_rss_bytes": peak,
    }


def run_hf_trainer(root: Path, model: Path, data_file: Path, args: argparse.Namespace) -> dict[str, Any]:
    settings = {
        "model": str(model),
        "data": str(data_file),
        "seq": args.seq,
        "batch": args.batch,
        "steps": args.steps,
        "lr": LEARNING_RATE,
        "seed": SEED,
        "out": str(root / "hf-out"),
    }
    output, peak = run_measured(
        [sys.executable, "-c", HF_TRAINER_SCRIPT, json.dumps(settings)], environment(root)
    )
    parsed: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return parsed | {"peak_rss_bytes": peak}


def run_measured(command: list[str], env: dict[str, str]) -> tuple[str, int]:
    """Run to the end; (stdout, peak resident memory of the largest process in its tree, in bytes).

    `wait4` reports the child's own usage merged with that of the descendants it waited for (torchrun
    waits for its worker), and `ru_maxrss` (KiB on Linux) is the largest of them."""
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        assert process.stdout is not None
        output = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(
                f"{command[:3]} exited {process.returncode}:\n{stderr.read().decode()[-4000:]}"
            )
    return output, usage.ru_maxrss * 1024


def tokens_per_second(run: dict[str, Any], warmup: int) -> float:
    tokens: list[int] = run["tokens"][warmup:]
    seconds: list[float] = run["durations"][warmup:]
    return sum(tokens) / sum(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the rates")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--checkpoint-interval", type=int, default=10)
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="alternate the two runs this many times and keep each one's best rate, so a "
        "load spike on a shared machine does not decide the ratio",
    )
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    ours_rates, baseline_rates, checkpoints = [], [], []
    ours_peaks: list[int] = []
    baseline_peaks: list[int] = []
    with tempfile.TemporaryDirectory(prefix="modelfleet-bench-") as tmp:
        root = Path(tmp)
        model, data_file = make_assets(root, args.hidden, args.layers, rows=args.steps * args.batch + 64)
        for _ in range(args.repeats):
            shutil.rmtree(root / "modelfleet-out", ignore_errors=True)
            ours = run_modelfleet(root, model, data_file, args)
            ours_rates.append(tokens_per_second(ours, args.warmup))
            ours_peaks.append(ours["peak_rss_bytes"])
            checkpoints += ours["checkpoints"]
            baseline = run_hf_trainer(root, model, data_file, args)
            baseline_rates.append(tokens_per_second(baseline, args.warmup))
            baseline_peaks.append(baseline["peak_rss_bytes"])
    ours_rate, baseline_rate = max(ours_rates), max(baseline_rates)
    saved_bytes = sum(b for b, _ in checkpoints)
    saved_seconds = sum(s for _, s in checkpoints)
    report = {
        "settings": vars(args) | {"json": str(args.json) if args.json else None},
        "modelfleet_tokens_per_second_each_repeat": [round(r, 1) for r in ours_rates],
        "hf_trainer_tokens_per_second_each_repeat": [round(r, 1) for r in baseline_rates],
        "modelfleet_tokens_per_second": round(ours_rate, 1),
        "hf_trainer_tokens_per_second": round(baseline_rate, 1),
        "ratio_modelfleet_over_hf_trainer": round(ours_rate / baseline_rate, 3),
        "modelfleet_peak_rss_mb_each_repeat": [round(p / 2**20) for p in ours_peaks],
        "hf_trainer_peak_rss_mb_each_repeat": [round(p / 2**20) for p in baseline_peaks],
        # the smallest of each: a peak only grows with outside noise (page cache is not RSS)
        "peak_rss_ratio_modelfleet_over_hf_trainer": round(min(ours_peaks) / min(baseline_peaks), 3),
        "checkpoints": len(checkpoints),
        "checkpoint_mb_each": round(saved_bytes / max(1, len(checkpoints)) / 1e6, 1),
        "checkpoint_seconds_per_gb": round(saved_seconds / (saved_bytes / 1e9), 2) if saved_bytes else None,
        "checkpoint_gb_per_second": round(saved_bytes / 1e9 / saved_seconds, 3) if saved_seconds else None,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
