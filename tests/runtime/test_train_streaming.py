"""`dataset.streaming` on two gloo ranks: each rank reads only its share (whole files when their count
divides by the world size, else every other row), the shares are disjoint and cover the data set, as the
ranks' own logs say; and a streamed run resumed from a checkpoint continues on exactly the batches it
would have had (its losses equal the straight run's), reading again only what it consumed of its current
pass. The four runs (two shares, the straight run and its resume) are cases of the session's shared
two-rank launch (tests.runtime.shared_launches): what is tested is what the runtime's reader and Trainer
do, each run building its data and model anew from its config as a pod does."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from modelfleet_train.checkpoints import step_name

from hack import tinymodel
from tests.runtime.conftest import TinyAssets, runtime_config, step_losses
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

ROWS_PER_FILE = 24
FILES = 4
STEPS = 10
RESUME_AT = 8
"""Each rank's share is 2 files of 24 rows: 12 micro-batches of 4, a pass every 6 steps of 2 micro-
batches; at step 8 each rank is 4 micro-batches into its second pass, which is all the resumed run reads
again."""


def split_corpus(directory: Path, files: int) -> tuple[Path, int]:
    """The tiny instruction rows in `files` JSONL files (rows in order, distinct prompts per file)."""
    rows = tinymodel.instruction_rows(ROWS_PER_FILE * FILES, seed=3)
    per_file = len(rows) // files
    for index in range(files):
        tinymodel.write_jsonl(
            directory / f"part-{index}.jsonl", rows[index * per_file : (index + 1) * per_file]
        )
    return directory, len(rows)


def streamed_config(tiny: TinyAssets, data: Path, output: Path, checkpoints: Path) -> dict[str, object]:
    config = runtime_config(
        tiny,
        output,
        dataset={"uri": str(data), "format": "jsonl", "streaming": True},
        checkpoint={"uri": str(checkpoints), "intervalSteps": RESUME_AT, "keepLast": 2},
    )
    config["hyperparameters"].update(maxSteps=STEPS, perDeviceBatchSize=4, gradientAccumulationSteps=2)
    return config


def rank_logs(log: str, pattern: str) -> dict[int, str]:
    """rank -> the first group of `pattern` in that rank's log lines."""
    found: dict[int, str] = {}
    for rank, text in re.findall(r"rank(\d) INFO modelfleet_train\.streaming: (.*)", log):
        match = re.fullmatch(pattern, text.strip())
        if match and int(rank) not in found:
            found[int(rank)] = match.group(1)
    return found


SHARES = {"files": FILES, "rows": 1}
"""Each share test's corpus: 4 files, which each rank reads whole, two of them; or 1 file, which the
ranks read every other row of."""


@shared_case(nproc=2)
def streamed_runs(request: pytest.FixtureRequest, work: Path) -> dict[str, Case]:
    """The two share runs and the straight and resumed run; keyed `files`, `rows` and `resume`. The
    resumed run starts from a copy of the straight run's checkpoint at RESUME_AT in its own, otherwise
    empty, checkpoint directory."""
    tiny: TinyAssets = request.getfixturevalue("tiny")
    cases = {}
    for share, files in SHARES.items():
        data, _ = split_corpus(work / share / "data", files)
        config = streamed_config(tiny, data, work / share / "out", work / share / "checkpoints")
        cases[share] = Case(work / share, [Run("train", config)])
    resume = work / "resume"
    data, _ = split_corpus(resume / "data", FILES)
    cases["resume"] = Case(
        resume,
        [
            Run(
                "straight", streamed_config(tiny, data, resume / "straight", resume / "straight-checkpoints")
            ),
            Run(
                "resumed",
                streamed_config(tiny, data, resume / "resumed", resume / "resumed-checkpoints"),
                resume_from=resume / "straight-checkpoints" / step_name(RESUME_AT),
            ),
        ],
    )
    return cases


@pytest.fixture(scope="module")
def runs(shared_trainer_runs: SharedLaunches) -> dict[str, Case]:
    return shared_trainer_runs.cases(streamed_runs)


@pytest.mark.parametrize("share", list(SHARES))
def test_each_rank_reads_only_its_share_and_the_shares_cover_the_data_set(
    runs: dict[str, Case], share: str
) -> None:
    rows = ROWS_PER_FILE * FILES
    log = runs[share].log("train")

    read = {
        rank: int(n) for rank, n in rank_logs(log, r"rank \d: pass 0 over its share read (\d+) rows").items()
    }
    assert sorted(read) == [0, 1], log[-4000:]
    assert sum(read.values()) == rows, read
    streams = rank_logs(log, r"rank \d streams (.*)")
    if share == "files":
        opened = {
            rank: set(re.fullmatch(r"2 of 4 files: (.*)", what).group(1).split(", "))  # type: ignore[union-attr]
            for rank, what in streams.items()
        }
        assert opened[0].isdisjoint(opened[1])
        assert opened[0] | opened[1] == {f"part-{i}.jsonl" for i in range(FILES)}
        assert read == {0: rows // 2, 1: rows // 2}, "whole files of equal size"
    else:
        assert streams == {
            0: "rows 0, 2, 4, ... of 1 file(s)",
            1: "rows 1, 3, 5, ... of 1 file(s)",
        }
    assert sorted(step_losses(runs[share].directory / "out")) == list(range(1, STEPS + 1))


def test_a_resumed_streamed_run_reproduces_the_straight_runs_losses(runs: dict[str, Case]) -> None:
    case = runs["resume"]
    log = case.log("resumed")

    assert log.count("micro-batches consumed before the resume again") == 2, "one line per rank"
    assert "rank 0: read the 4 micro-batches consumed before the resume again" in log
    assert "rank 1: read the 4 micro-batches consumed before the resume again" in log
    first, second = step_losses(case.directory / "straight"), step_losses(case.directory / "resumed")
    assert sorted(second) == list(range(RESUME_AT + 1, STEPS + 1)), "the resumed run did not resume"
    for step in second:
        assert second[step] == pytest.approx(first[step], rel=1e-6, abs=1e-6), (step, first, second)
