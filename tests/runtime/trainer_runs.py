"""Several runs of the runtime's `Trainer` in one `torchrun` launch, for tests whose subject is what a
run does, not how a worker starts.

A launch of two ranks costs about 20 CPU-s of imports and process-group set-up before any step; a tiny
run costs a few. `run_trainer_cases` runs this module's `main` under torchrun once over a plan of cases.
Each rank does what `modelfleet_train`'s `train` command does (import guard, logging, the config loaded
and validated from its file, `Trainer(config, ctx).run()`), once per run, building model, strategy and
data anew from the run's config as a pod does; only the process group and the imports are shared. A
run's log lines (what the pod's log would hold, every rank's) go to `<case>/<run>-rank<N>.log` besides
the combined torchrun log, so a test reads the log of its own run. A failed run is recorded in
`<case>/error-rank<N>.txt` (which the test reports) and ends its case: the next case still runs.
A case may instead name a function each rank calls with it (`Case.call`): test_train_meta_init.py's
cases inspect a strategy's set-up, no training. tests.runtime.shared_launches gathers the cases of
several test files into one launch per world size.

What a fresh launch itself does (the CLI's argument handling and exit codes, SIGTERM through torchrun,
the supervisor, the operator-rendered worker) is tested with real `torchrun -m modelfleet_train`
launches elsewhere (test_train_contract.py, test_train_ddp.py, test_train_supervise.py).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import logging
import os
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Run:
    """One training run: `name` names its log files; `resume_from` is a checkpoint directory that
    rank 0 copies into the run's checkpoint store, and marks latest, before the run starts; `env` is
    added to every rank's environment for this run alone (what a pod's env gives one job: the progress
    ConfigMap, a storage connection string)."""

    name: str
    config: dict[str, Any]
    resume_from: Path | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    """Runs that belong together (a straight run, then one resumed from its checkpoint), in order, in
    `directory`; a failed run skips the rest of its case. `call` (`module:function`) names what each
    rank does with the case instead of training its runs: the function is given the case's plan entry
    (`dir`, and `runs` with their config files) and the rank."""

    directory: Path
    runs: list[Run] = field(default_factory=list)
    call: str | None = None

    def check(self) -> None:
        """Fails the test with the errors the case's ranks recorded, if any."""
        errors = sorted(self.directory.glob("error-rank*.txt"))
        assert not errors, "\n".join(path.read_text() for path in errors)

    def log(self, run: str) -> str:
        """Every rank's log lines of `run`, once `check` has passed."""
        self.check()
        return "".join(path.read_text() for path in sorted(self.directory.glob(f"{run}-rank*.log")))


def run_trainer_cases(cases: list[Case], work: Path, nproc: int = 2) -> None:
    """All `cases` in one launch of `nproc` ranks; fails the test on a non-zero exit (a failed run
    does not exit non-zero: see `Case.log`)."""
    # here, not at the top: the ranks import this module, and need neither pytest nor the harness
    from tests.runtime.conftest import run_module_ranks, runtime_env, write_config

    plan = []
    for case in cases:
        case.directory.mkdir(parents=True, exist_ok=True)
        runs = []
        for run in case.runs:
            runs.append(
                {
                    "name": run.name,
                    "config": str(write_config(run.config, case.directory / f"{run.name}.yaml")),
                    "resumeFrom": str(run.resume_from) if run.resume_from else None,
                    "env": run.env,
                }
            )
        plan.append({"dir": str(case.directory), "runs": runs, "call": case.call})
    env = runtime_env(work) | {"MODELFLEET_METRICS_PORT": "0"}  # a fresh port for every run
    (work / "plan.json").write_text(json.dumps(plan))  # read back by main
    run_module_ranks(__name__, ["--plan", str(work / "plan.json")], work, env, nproc)


def train(run: dict[str, Any], log_file: Path) -> None:
    """What the `train` command does on this rank (a tokenizer job too: rank 0 alone, no Trainer), with
    the run's `env`, its log lines also written to `log_file`."""
    from modelfleet_api.training import TrainingMethod
    from modelfleet_train import distributed, tokenizer_training
    from modelfleet_train.checkpoints import LATEST, parse_step
    from modelfleet_train.config import Machine, load_config
    from modelfleet_train.trainer import Trainer

    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
    saved = {name: os.environ.get(name) for name in run["env"]}
    os.environ.update(run["env"])
    try:
        config = load_config(Path(run["config"]), Machine.detect())
        if config.method.type == TrainingMethod.TOKENIZER:
            tokenizer_training.run(config)
            return
        ctx = distributed.init_distributed()
        if run["resumeFrom"] is not None and ctx.is_main:
            checkpoint = Path(run["resumeFrom"])
            store = Path(config.checkpoint.uri or "")
            shutil.copytree(checkpoint, store / checkpoint.name)
            (store / LATEST).write_text(str(parse_step(checkpoint.name)))
        distributed.barrier()
        result = Trainer(config, ctx).run()
        assert not result.preempted, "the run was preempted"
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        logging.getLogger().removeHandler(handler)
        handler.close()


def main() -> None:
    """Under torchrun, after what the CLI does first (import guard, logging): join the process group, then
    `run_case(case, rank)` for every case of the `--plan` file in turn. A failing case is recorded in its
    `dir`'s `error-rank<N>.txt` (which `Case.check` reports) and the next case runs; between cases the last
    one's objects are collected first (a ZeRO-3 strategy leaves transformers its DeepSpeed config until it
    is) and the ranks wait for each other."""
    from modelfleet_train import cli, distributed, import_guard

    import_guard.install()
    cli.setup_logging(int(os.environ.get("RANK", "0")))
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", type=Path, required=True)
    plan = json.loads(parser.parse_args().plan.read_text())
    ctx = distributed.init_distributed()
    try:
        for case in plan:
            try:
                run_case(case, ctx.rank)
            except Exception:
                Path(case["dir"], f"error-rank{ctx.rank}.txt").write_text(traceback.format_exc())
            gc.collect()
            distributed.barrier()
    finally:
        distributed.shutdown()


def run_case(case: dict[str, Any], rank: int) -> None:
    """The function the case's `call` names, given the case and rank; else the case's runs in order,
    each with its own log files (a failed run ends the case)."""
    if case["call"]:
        module, function = case["call"].split(":")
        getattr(importlib.import_module(module), function)(case, rank)
        return
    for run in case["runs"]:
        train(run, Path(case["dir"]) / f"{run['name']}-rank{rank}.log")


if __name__ == "__main__":
    main()
