"""`spec.evaluation` on the tiny model, in one two-process run of the runtime's Trainer (DDP on gloo, in
the session's shared launch: tests.runtime.shared_launches): the held-out loss
every two steps over both ranks' shares of the held-out rows, `output.select: best` writing the
checkpoint with the lowest of them, then rank 0 scoring the written model on a reference set (BLEU,
ROUGE, exact match) and on an lm-evaluation-harness task defined in local files (no hub).

The held-out figures are checked against a hand computation: the written model's transformers loss on
each held-out row (the rows `holdoutFraction` picks), weighted by the row's label tokens. The learning
rate is high enough that the held-out loss rises again after its best step, so "best" is not "last".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from hack import tinymodel
from tests.runtime.conftest import TinyAssets, runtime_config
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

STEPS, EVERY = 10, 2
HOLDOUT = 0.1
TASK = "tiny_counts"
REFERENCE_ROWS = 12


def write_local_task(directory: Path) -> None:
    """An lm-evaluation-harness multiple-choice task in files of its own: a YAML whose `data_files` is a
    path relative to it, and the JSONL it names."""
    directory.mkdir(parents=True)
    docs = [
        {"prompt": prompt, "choices": [response, f"I saw a {colour} owl maybe."], "answer": 0}
        for (prompt, response), colour in zip(
            tinymodel.sentences(8, seed=5), ["red", "blue"] * 4, strict=True
        )
    ]
    tinymodel.write_jsonl(directory / "counts.jsonl", docs)
    (directory / f"{TASK}.yaml").write_text(
        f"task: {TASK}\n"
        "dataset_path: json\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        "    test: counts.jsonl\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "{{prompt}}"\n'
        "doc_to_choice: choices\n"
        "doc_to_target: answer\n"
        "metric_list:\n"
        "  - metric: acc\n"
    )


@dataclass
class EvaluatedRun:
    output: Path
    checkpoints: Path
    evals: dict[int, dict[str, Any]]
    """Step -> the run's JSON-lines `eval` record."""
    summary: dict[str, Any]
    """evaluation.json, written beside the model."""
    references: list[dict[str, str]]
    task_docs: int


def references() -> list[dict[str, str]]:
    return [{"prompt": p, "reference": r} for p, r in tinymodel.sentences(REFERENCE_ROWS, seed=11)]


@shared_case(nproc=2)
def evaluation_case(request: pytest.FixtureRequest, directory: Path) -> Case:
    directory.mkdir(parents=True)
    reference_file = tinymodel.write_jsonl(directory / "references.jsonl", references())
    write_local_task(directory / "tasks")
    config = runtime_config(
        request.getfixturevalue("tiny"),
        directory / "out",
        hyperparameters={
            "learningRate": 2e-2,
            "lrSchedule": "constant",
            "maxSteps": STEPS,
            "perDeviceBatchSize": 4,
            "sequenceLength": 64,
            "seed": 7,
        },
        checkpoint={"uri": str(directory / "checkpoints"), "intervalSteps": EVERY, "keepLast": 1},
        evaluation={
            "holdoutFraction": HOLDOUT,
            "intervalSteps": EVERY,
            "generation": {
                "uri": str(reference_file),
                "metrics": ["bleu", "rouge1", "rougeL", "exactMatch"],
                "maxNewTokens": 16,
            },
            "lmEval": {"tasks": [TASK], "tasksUri": str(directory / "tasks")},
        },
    )
    config["output"]["select"] = "best"
    return Case(directory, [Run("train", config)])


@pytest.fixture(scope="module")
def run(shared_trainer_runs: SharedLaunches) -> EvaluatedRun:
    case = shared_trainer_runs.case(evaluation_case)
    case.check()
    output = case.directory / "out"
    lines = map(json.loads, (output / "training_metrics.jsonl").read_text().splitlines())
    evals = {row["step"]: row for row in lines if row["event"] == "eval"}
    summary = json.loads((output / "evaluation.json").read_text())
    task_docs = len((case.directory / "tasks" / "counts.jsonl").read_text().splitlines())
    return EvaluatedRun(output, case.directory / "checkpoints", evals, summary, references(), task_docs)


def held_out_loss_by_hand(model_dir: Path, tiny: TinyAssets) -> float:
    """The written model's mean token cross-entropy on the held-out rows: transformers' own loss of each
    row (a mean over its label tokens), weighted by its label tokens."""
    import datasets
    from modelfleet_api.training import DatasetFields, TrainingMethod
    from modelfleet_train import data
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [json.loads(line) for line in tiny.instructions.read_text().splitlines()]
    _, held_out = data.holdout_indices(len(rows), HOLDOUT)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenized = data.tokenize(
        datasets.Dataset.from_list([rows[i] for i in held_out]),
        tokenizer,
        TrainingMethod.FULL,
        DatasetFields(),
        64,
    )
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for row in tokenized:
            labels = torch.tensor([row["labels"]])
            count = int((labels[:, 1:] != data.IGNORE_INDEX).sum())
            total += float(model(input_ids=torch.tensor([row["input_ids"]]), labels=labels).loss) * count
            tokens += count
    assert len(tokenized) == round(len(rows) * HOLDOUT)
    return total / tokens


def test_held_out_figures_match_a_hand_computation(run: EvaluatedRun, tiny: TinyAssets) -> None:
    assert sorted(run.evals) == list(range(EVERY, STEPS + 1, EVERY))
    best = run.summary["bestStep"]
    by_hand = held_out_loss_by_hand(run.output, tiny)
    assert run.evals[best]["loss"] == pytest.approx(by_hand, rel=1e-5)
    assert run.summary["evalLoss"] == pytest.approx(by_hand, rel=1e-5)
    for record in run.evals.values():
        assert record["perplexity"] == pytest.approx(math.exp(record["loss"]))
        assert record["accuracy"] is None


def test_best_checkpoint_is_the_step_with_the_lowest_held_out_loss(run: EvaluatedRun) -> None:
    losses = {step: record["loss"] for step, record in run.evals.items()}
    best = min(losses, key=losses.__getitem__)
    assert best != STEPS, f"the held-out loss fell to the end ({losses}): best and last cannot be told apart"
    assert run.summary["bestStep"] == best
    assert run.summary["bestEvalLoss"] == pytest.approx(losses[best])
    assert run.summary["evalLoss"] == pytest.approx(losses[best])
    kept = sorted(p.name for p in run.checkpoints.glob("step-*"))
    assert kept == [f"step-{best:08d}", f"step-{STEPS:08d}"], "keepLast 1 keeps the latest, and the best"


def test_reference_set_is_scored_with_bleu_rouge_and_exact_match(run: EvaluatedRun) -> None:
    """The scores equal sacrebleu's and rouge-score's on the written model's own greedy answers."""
    import sacrebleu
    from modelfleet_train import data
    from rouge_score import rouge_scorer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(run.output)
    model = AutoModelForCausalLM.from_pretrained(run.output, dtype=torch.float32).eval()
    answers = []
    for row in run.references:
        ids = torch.tensor([data.prompt_ids(tokenizer, row["prompt"])])
        with torch.no_grad():
            out = model.generate(input_ids=ids, max_new_tokens=16, do_sample=False, use_cache=True)
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))
    references = [row["reference"] for row in run.references]
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    rouge = [scorer.score(ref, answer) for ref, answer in zip(references, answers, strict=True)]
    metrics = run.summary["metrics"]
    assert metrics["bleu"] == pytest.approx(sacrebleu.corpus_bleu(answers, [references]).score)
    assert metrics["rouge1"] == pytest.approx(sum(r["rouge1"].fmeasure for r in rouge) / len(rouge))
    assert metrics["rougeL"] == pytest.approx(sum(r["rougeL"].fmeasure for r in rouge) / len(rouge))
    exact = sum(a.strip() == r for a, r in zip(answers, references, strict=True)) / len(answers)
    assert metrics["exactMatch"] == pytest.approx(exact)
    assert metrics["rougeL"] > 0, f"the trained model's answers share nothing with the references: {answers}"


def test_lm_eval_runs_a_task_defined_in_local_files(run: EvaluatedRun) -> None:
    accuracy = run.summary["metrics"][f"lm-eval/{TASK}/acc"]
    assert 0.0 <= accuracy <= 1.0
    assert (accuracy * run.task_docs) == pytest.approx(round(accuracy * run.task_docs)), "a share of the docs"
    final = [json.loads(line) for line in (run.output / "training_metrics.jsonl").read_text().splitlines()]
    (scores,) = [row["scores"] for row in final if row["event"] == "final_scores"]
    assert scores == {k: v for k, v in run.summary["metrics"].items()}
