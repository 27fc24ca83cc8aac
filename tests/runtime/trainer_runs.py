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

What a fresh launch itself does (the CLI's argument handling and exit codes, SIGTERM through torchrun,
the supervisor, the operator-rendered worker) is tested with real `torchrun -m modelfleet_train`
launches elsewhere (test_train_contract.py, test_train_ddp.py, test_train_supervise.py).
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.runtime.conftest import run_module_ranks, runtime_env, write_config


@dataclass(frozen=True)
class Run:
    """One training run: `name` names its log files; `resume_from` is a checkpoint directory that
    rank 0 copies into the run's checkpoint store, and marks latest, before the run starts."""

    name: str
    config: dict[str, Any]
    resume_from: Path | None = None


@dataclass(frozen=True)
class Case:
    """Runs that belong together (a straight run, then one resumed from its checkpoint), in order, in
    `directory`; a failed run skips the rest of its case."""

    directory: Path
    runs: list[Run] = field(default_factory=list)

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
                }
            )
        plan.append({"dir": str(case.directory), "runs": runs})
    (work / "plan.json").write_text(json.dumps(plan))
    env = runtime_env(work) | {"MODELFLEET_METRICS_PORT": "0"}  # a fresh port for every run
    run_module_ranks(__name__, ["--plan", str(work / "plan.json")], work, env)


def train(run: dict[str, Any], log_file: Path) -> None:
    """What the `train` command does on this rank, its log lines also written to `log_file`."""
    from modelfleet_train import distributed
    from modelfleet_train.checkpoints import LATEST, parse_step
    from modelfleet_train.config import Machine, load_config
    from modelfleet_train.trainer import Trainer

    handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.getLogger().handlers[0].formatter)
    logging.getLogger().addHandler(handler)
    try:
        config = load_config(Path(run["config"]), Machine.detect())
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
        logging.getLogger().removeHandler(handler)
        handler.close()


def main() -> None:
    """Every case of the plan; a failing run is recorded, ends its case, and the next case runs."""
    from modelfleet_train import cli, distributed, import_guard

    import_guard.install()
    rank = int(os.environ.get("RANK", "0"))
    cli.setup_logging(rank)
    parser = argparse.ArgumentParser()
    parser.add_argument("--plan", type=Path, required=True)
    plan = json.loads(parser.parse_args().plan.read_text())
    distributed.init_distributed()
    try:
        for case in plan:
            directory = Path(case["dir"])
            try:
                for run in case["runs"]:
                    train(run, directory / f"{run['name']}-rank{rank}.log")
            except Exception:
                (directory / f"error-rank{rank}.txt").write_text(traceback.format_exc())
            gc.collect()  # the strategy (a ZeRO-3 one holds transformers' DeepSpeed config) goes first
            distributed.barrier()
    finally:
        distributed.shutdown()


if __name__ == "__main__":
    main()
