"""The quality step of a point, against the fake OpenAI server standing in for an engine: it answers
every prompt with `tok` repeated up to `max_tokens` (greedy or not: it has one answer), so every score
is known by hand. `modelfleet-bench run` (its real entry point, in its own process) scores a reference
set after the load phase and reports the scores in results.json and its termination message, without
counting those requests in the load's figures; an lm-evaluation-harness task defined in local files
(read from Azure Blob, Azurite) runs against the server through the harness's own OpenAI client; a
log-likelihood task over a chat API, and an unreachable target, fail naming the field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelfleet_api.benchmark import BenchmarkRuntimeConfig
from modelfleet_api.benchmarksweep import PointMetrics
from modelfleet_api.quality import PointQuality, QualitySpec
from modelfleet_serve.bench.fake_server import running
from modelfleet_serve.bench.quality import score_quality

from hack import tinymodel
from tests.runtime.conftest import AZURITE_ACCOUNT
from tests.runtime.test_train_evaluation import write_local_task

pytestmark = pytest.mark.runtime

PROMPTS = Path(__file__).parents[2] / "examples" / "bench" / "sharegpt-sample.jsonl"
LOAD = {"mode": "closed-loop", "concurrency": 2, "requests": 6, "warmupRequests": 1}
REFERENCES = [
    {"question": "say tok twice", "answers": "tok tok"},  # the answer: exact, ROUGE-1 F1 1
    {"question": "say foo", "answers": ["tok foo", "bar"]},  # ROUGE-1 against 'tok foo': P 1/2, R 1/2
    {"question": "say tok", "answers": "tok"},  # 'tok tok' vs 'tok': P 1/2, R 1, F1 2/3
]
ECHO_TASK = "echo_task"
ECHO_DOCS = [{"q": "a", "target": "tok tok"}, {"q": "b", "target": "tok"}, {"q": "c", "target": "tok tok"}]


@pytest.fixture(scope="module")
def fake_server() -> Any:
    with running(ttft_ms=2.0, itl_ms=0.5) as url:
        yield url


def point_config(
    url: str, quality: dict[str, Any], protocol: str = "openai-chat", **more: Any
) -> dict[str, Any]:
    return {
        "targetUrl": url,
        "model": "fake",
        "protocol": protocol,
        "workload": {"promptsFile": {"uri": str(PROMPTS), "outputTokens": {"mean": 4}}},
        "load": LOAD,
        "quality": quality,
        **more,
    }


def write_echo_task(directory: Path) -> Path:
    """A generate_until task in files of its own: two tokens asked, answers trimmed, exact match."""
    directory.mkdir(parents=True)
    tinymodel.write_jsonl(directory / "echo.jsonl", ECHO_DOCS)
    (directory / f"{ECHO_TASK}.yaml").write_text(
        f"task: {ECHO_TASK}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        "    test: echo.jsonl\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        'doc_to_text: "{{q}}"\n'
        'doc_to_target: "{{target}}"\n'
        "generation_kwargs:\n"
        "  max_gen_toks: 2\n"
        "metric_list:\n"
        "  - metric: exact_match\n"
        "    aggregation: mean\n"
        "    higher_is_better: true\n"
        "filter_list:\n"
        "  - name: trimmed\n"
        "    filter:\n"
        "      - function: remove_whitespace\n"
    )
    return directory


def test_run_scores_a_reference_set_after_the_load_and_reports_it(fake_server: str, tmp_path: Path) -> None:
    references = tinymodel.write_jsonl(tmp_path / "references.jsonl", REFERENCES)
    quality = {
        "referenceSet": {"uri": str(references), "promptField": "question", "referenceField": "answers",
                         "metrics": ["exactMatch", "rouge1"], "maxNewTokens": 2},
        "floors": {"exactMatch": 0.5},
    }  # fmt: skip
    output, termination = tmp_path / "results", tmp_path / "termination-log"
    config_file = tmp_path / "bench.yaml"
    config_file.write_text(yaml.safe_dump(point_config(fake_server, quality, outputDir=str(output))))
    ran = subprocess.run(
        [sys.executable, "-m", "modelfleet_serve.bench.cli", "run", "--config", str(config_file),
         "--termination-log", str(termination)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-4000:]

    rouge1 = (1.0 + 0.5 + 2 / 3) / 3
    reported = PointMetrics.model_validate_json(termination.read_text())
    assert reported.quality == PointQuality(
        scores={"exactMatch": round(1 / 3, 4), "rouge1": round(rouge1, 4)}, meets_floor=False
    )
    document = json.loads((output / "results.json").read_text())
    assert document["quality"]["scores"] == {
        "exactMatch": pytest.approx(1 / 3),
        "rouge1": pytest.approx(rouge1),
    }
    assert document["quality"]["reference_rows"] == 3
    assert document["quality"]["floor_misses"] == [f"exactMatch {1 / 3:g} < 0.5"]
    assert "quality floor missed: exactMatch 0.3333 < 0.5" in ran.stderr
    # the load's figures are the load's: its 6 measured requests, none of the 3 quality ones
    assert document["summary"]["requests"] == LOAD["requests"]
    assert len((output / "requests.csv").read_text().splitlines()) == 1 + LOAD["requests"]


def test_an_lm_eval_task_from_blob_storage_runs_against_the_endpoint(
    fake_server: str, tmp_path: Path, azurite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness's `local-chat-completions` client asks for two tokens per document: `tok tok` is
    right for two of the three documents."""
    from azure.storage.blob import ContainerClient

    tasks = write_echo_task(tmp_path / "tasks")
    container = ContainerClient.from_connection_string(azurite, "evals")
    if not container.exists():
        container.create_container()
    for path in tasks.iterdir():
        container.upload_blob(f"suites/echo/{path.name}", path.read_bytes(), overwrite=True)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT)
    metric = f"lm-eval/{ECHO_TASK}/exact_match/trimmed"
    quality = {
        "lmEval": {"tasks": [ECHO_TASK], "tasksUri": "az://evals/suites/echo"},
        "floors": {metric: 0.5},
    }
    config = BenchmarkRuntimeConfig.model_validate(point_config(fake_server, quality))

    assert config.quality is not None
    scored = score_quality(config, config.quality)
    assert scored.scores == {metric: pytest.approx(2 / 3)}
    assert scored.point_quality(quality["floors"]).meets_floor is True


def test_a_log_likelihood_task_over_a_chat_api_is_refused_naming_the_field(
    fake_server: str, tmp_path: Path
) -> None:
    write_local_task(tmp_path / "tasks")  # multiple_choice: scored by log-likelihood
    quality = {"lmEval": {"tasks": ["tiny_counts"], "tasksUri": str(tmp_path / "tasks")}}
    config = BenchmarkRuntimeConfig.model_validate(point_config(fake_server, quality))
    with pytest.raises(
        ValueError, match=r"quality.lmEval.tasks: \['tiny_counts'\] are scored by log-likelihood"
    ):
        score_quality(config, QualitySpec.model_validate(quality))


def test_a_reference_set_the_target_cannot_answer_fails_the_step(tmp_path: Path) -> None:
    references = tinymodel.write_jsonl(tmp_path / "references.jsonl", [{"prompt": "p", "reference": "r"}])
    quality = {"referenceSet": {"uri": str(references)}}
    config = BenchmarkRuntimeConfig.model_validate(point_config("http://127.0.0.1:9", quality))
    with pytest.raises(
        ValueError, match=r"quality.referenceSet: 1 of 1 requests to http://127.0.0.1:9 failed"
    ):
        score_quality(config, QualitySpec.model_validate(quality))


def test_the_cli_scores_quality_alone_and_once_per_local_sweep(
    fake_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`modelfleet-bench quality` sends no load, prints the scores and exits 1 on a missed floor (for a
    pipeline to stop on); `modelfleet-bench sweep` scores the target once, after its last point."""
    from modelfleet_serve.bench.cli import main

    references = tinymodel.write_jsonl(tmp_path / "references.jsonl", [{"prompt": "p", "reference": "tok"}])
    quality = {"referenceSet": {"uri": str(references), "metrics": ["exactMatch"], "maxNewTokens": 1}}
    config_file = tmp_path / "point.yaml"
    floored = {**quality, "floors": {"exactMatch": 1.0}}
    config_file.write_text(yaml.safe_dump(point_config(fake_server, floored)))
    assert main(["quality", "--config", str(config_file)]) == 0  # 'tok' is the one-token answer
    assert json.loads(capsys.readouterr().out)["scores"] == {"exactMatch": 1.0}
    longer = {**floored, "referenceSet": {**quality["referenceSet"], "maxNewTokens": 2}}
    config_file.write_text(yaml.safe_dump(point_config(fake_server, longer)))
    assert main(["quality", "--config", str(config_file)]) == 1  # 'tok tok' is not 'tok'

    sweep = point_config(fake_server, quality, outputDir=str(tmp_path / "sweep"))
    sweep["load"] = {"mode": "closed-loop", "concurrency": [1, 2], "requests": 4}
    config_file.write_text(yaml.safe_dump(sweep))
    assert main(["sweep", "--config", str(config_file)]) == 0
    written = json.loads((tmp_path / "sweep" / "quality.json").read_text())
    assert written["scores"] == {"exactMatch": 1.0} and written["reference_rows"] == 1
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir() if p.is_dir()) == ["point-0", "point-1"]
