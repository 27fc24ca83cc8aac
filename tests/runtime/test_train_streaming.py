"""`dataset.streaming` on two gloo ranks: each rank reads only its share (whole files when their count
divides by the world size, else every other row), the shares are disjoint and cover the data set, as the
ranks' own logs say; and a streamed run resumed from a checkpoint continues on exactly the batches it
would have had (its losses equal the straight run's), reading again only what it consumed of its current
pass."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from modelfleet_train.checkpoints import LATEST, step_name

from hack import tinymodel
from tests.runtime.conftest import TinyAssets, run_training, runtime_config, step_losses

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


@pytest.mark.parametrize(("files", "share"), [(FILES, "files"), (1, "rows")])
def test_each_rank_reads_only_its_share_and_the_shares_cover_the_data_set(
    tiny: TinyAssets, tmp_path: Path, files: int, share: str
) -> None:
    data, rows = split_corpus(tmp_path / "data", files)
    config = streamed_config(tiny, data, tmp_path / "out", tmp_path / "checkpoints")
    log = run_training(config, tmp_path / "work")

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
    assert sorted(step_losses(tmp_path / "out")) == list(range(1, STEPS + 1))


def test_a_resumed_streamed_run_reproduces_the_straight_runs_losses(tiny: TinyAssets, tmp_path: Path) -> None:
    data, _ = split_corpus(tmp_path / "data", FILES)
    straight = streamed_config(tiny, data, tmp_path / "straight", tmp_path / "straight-checkpoints")
    run_training(straight, tmp_path / "straight-work")

    resumed_checkpoints = tmp_path / "resumed-checkpoints"
    resumed_checkpoints.mkdir()
    shutil.copytree(
        tmp_path / "straight-checkpoints" / step_name(RESUME_AT), resumed_checkpoints / step_name(RESUME_AT)
    )
    (resumed_checkpoints / LATEST).write_text(str(RESUME_AT))
    resumed = streamed_config(tiny, data, tmp_path / "resumed", resumed_checkpoints)
    log = run_training(resumed, tmp_path / "resumed-work")

    assert log.count("micro-batches consumed before the resume again") == 2, "one line per rank"
    assert "rank 0: read the 4 micro-batches consumed before the resume again" in log
    assert "rank 1: read the 4 micro-batches consumed before the resume again" in log
    first, second = step_losses(tmp_path / "straight"), step_losses(tmp_path / "resumed")
    assert sorted(second) == list(range(RESUME_AT + 1, STEPS + 1)), "the resumed run did not resume"
    for step in second:
        assert second[step] == pytest.approx(first[step], rel=1e-6, abs=1e-6), (step, first, second)
