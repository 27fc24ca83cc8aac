"""Command line: `train` (the default, run under torchrun), `validate` and `prepare`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from modelfleet_api.training import DatasetFormat, StrategyType, TrainingMethod

from modelfleet_train import import_guard
from modelfleet_train.config import ConfigError, Machine, config_path, load_config, parse_config
from modelfleet_train.failures import record_rank_failure
from modelfleet_train.signals import EXIT_CODE_PREEMPTED

log = logging.getLogger("modelfleet_train")

COMMANDS = ("train", "validate", "prepare")
EXIT_FAILED = 1
EXIT_CONFIG_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelfleet_train", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("train", "train (run under torchrun on every node)"),
        ("validate", "check a config without starting processes or touching a GPU"),
        ("prepare", "download the config's model and dataset for offline use"),
    ]:
        command = sub.add_parser(name, help=help_text)
        command.add_argument(
            "--config",
            help="runtime config file (default: $MODELFLEET_CONFIG, then the operator's mount path)",
        )
    sub.choices["validate"].add_argument("--world-size", type=int, help="processes the job will start")
    sub.choices["validate"].add_argument(
        "--assume-gpu",
        action="store_true",
        help="check as on a GPU node (validating on a laptop for the cluster)",
    )
    sub.choices["prepare"].add_argument(
        "--target", required=True, type=Path, help="directory to write model/ and dataset/ into"
    )
    return parser


def setup_logging(rank: int) -> None:
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s rank{rank} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("modelfleet_train.model_init").setLevel(logging.INFO)  # every rank: its weights path
    logging.getLogger("modelfleet_train.streaming").setLevel(logging.INFO)  # every rank: the rows it reads


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv.insert(0, "train")
    args = _parser().parse_args(argv)
    import_guard.install()
    rank = int(os.environ.get("RANK", "0"))
    setup_logging(rank)
    try:
        if args.command == "validate":
            return validate(config_path(args.config), args.world_size, args.assume_gpu)
        if args.command == "prepare":
            return prepare(config_path(args.config), args.target)
        return train(config_path(args.config))
    except ConfigError as error:
        print(error, file=sys.stderr)
        record_rank_failure(error, rank)
        return EXIT_CONFIG_ERROR
    except Exception as error:  # what the pod's termination message names (the supervisor writes it)
        log.exception("rank %d failed", rank)
        record_rank_failure(error, rank)
        return EXIT_FAILED


def validate(path: Path, world_size: int | None, assume_gpu: bool) -> int:
    detected = Machine.detect()
    machine = Machine(cuda_available=assume_gpu or detected.cuda_available, world_size=world_size)
    config = load_config(path, machine)
    world = config.topology.nodes * config.topology.gpus_per_node
    summary: dict[str, Any] = {
        "job": config.job.name,
        "method": config.method.type.value,
        "strategy": config.strategy.type.value,
        "worldSize": world,
    }
    if config.strategy.type == StrategyType.DEEPSPEED:
        from modelfleet_train.strategies.deepspeed import merged_config

        summary["deepspeedConfig"] = merged_config(config, world)
    print(json.dumps({"valid": True, **summary}, indent=2))
    return 0


def train(path: Path) -> int:
    from modelfleet_train import distributed
    from modelfleet_train.trainer import Trainer

    config = load_config(path, Machine.detect())
    if config.method.type == TrainingMethod.TOKENIZER:  # one process, no model: no process group
        from modelfleet_train import tokenizer_training

        tokenizer_training.run(config)
        return 0
    ctx = distributed.init_distributed()
    try:
        result = Trainer(config, ctx).run()
    finally:
        distributed.shutdown()
    return EXIT_CODE_PREEMPTED if result.preempted else 0


def prepare(path: Path, target: Path) -> int:
    """Cache model and dataset under `target`, so the job can point model.uri/dataset.uri at them offline."""
    from modelfleet_train import data, model_loading

    config = parse_config(path.read_text())
    model_dir, dataset_dir = target / "model", target / "dataset"
    prepared: dict[str, dict[str, str]] = {}
    if config.model is not None:  # a tokenizer job has none
        source = model_loading.resolve(config.model)
        if Path(source).is_dir():
            import shutil

            shutil.copytree(source, model_dir, dirs_exist_ok=True)
        else:
            from huggingface_hub import snapshot_download

            snapshot_download(source, revision=config.model.revision, local_dir=model_dir)
        prepared["model"] = {"uri": str(model_dir)}
    raw = data.load_raw(config.dataset, model_loading.cache_root())
    raw.save_to_disk(str(dataset_dir))
    prepared["dataset"] = {"uri": str(dataset_dir), "format": DatasetFormat.ARROW.value}
    print(json.dumps(prepared, indent=2))
    return 0
