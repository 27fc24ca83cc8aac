"""The scoring a TrainingJob's evaluation and a sweep's quality step share (``modelfleet_api.scoring``):
reference rows read from files, BLEU, ROUGE and exact match of known answers, and the names and
directions of lm-evaluation-harness scores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelfleet_api.evaluation import GenerationMetric
from modelfleet_api.quality import ReferenceSet
from modelfleet_api.scoring import lm_eval_metric_name, lm_eval_scores, reference_rows, score

pytestmark = pytest.mark.unit

FIELD = "quality.referenceSet"


def write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_generation_metrics_of_known_answers() -> None:
    metrics = list(GenerationMetric)
    perfect = score(metrics, ["There are 3 red cats."], [["There are 3 red cats."]])
    assert perfect == {"bleu": pytest.approx(100.0)} | {
        m: pytest.approx(1.0) for m in ("rouge1", "rouge2", "rougeL", "rougeLsum", "exactMatch")
    }
    partial = score(
        [GenerationMetric.ROUGE1, GenerationMetric.EXACT_MATCH], ["the cat sat"], [["the cat sat down"]]
    )
    # unigrams: precision 3/3, recall 3/4, F1 = 2 * 1 * 0.75 / 1.75
    assert partial["rouge1"] == pytest.approx(2 * 0.75 / 1.75)
    assert partial["exactMatch"] == 0.0
    # several references: ROUGE takes the best one per row, exact match any of them
    several = score([GenerationMetric.ROUGE1, GenerationMetric.EXACT_MATCH], ["a b"], [["x y", " a b "]])
    assert several == {"rouge1": pytest.approx(1.0), "exactMatch": 1.0}
    assert score([GenerationMetric.BLEU], ["a b c d", "e f"], [["a b c d"], ["e f", "e f g"]])["bleu"] > 0


def test_reference_rows_of_a_file_and_of_a_directory_in_order(tmp_path: Path) -> None:
    spec = ReferenceSet(uri="/r", prompt_field="q", reference_field="a", max_rows=3)
    single = write_jsonl(tmp_path / "one.jsonl", [{"q": "1+1", "a": "2"}, {"q": "2+2", "a": ["4", "four"]}])
    assert reference_rows(single, spec, FIELD) == [("1+1", ["2"]), ("2+2", ["4", "four"])]
    folder = tmp_path / "set"
    folder.mkdir()
    write_jsonl(folder / "b.jsonl", [{"q": "b1", "a": "x"}, {"q": "b2", "a": "y"}])
    write_jsonl(folder / "a.jsonl", [{"q": "a1", "a": "x"}])
    (folder / "notes.txt").write_text("not read")
    assert [p for p, _ in reference_rows(folder, spec, FIELD)] == ["a1", "b1", "b2"]  # maxRows 3


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([{"prompt": "p"}], "quality.referenceSet.referenceField: bad.jsonl:1 has no column 'reference'"),
        ([{"text": "p", "reference": "r"}], "quality.referenceSet.promptField: bad.jsonl:1 has no column"),
        ([{"prompt": "p", "reference": [1]}], "bad.jsonl:1 needs a string or a list of strings"),
        ([{"prompt": "p", "reference": []}], "bad.jsonl:1 needs a string or a list of strings"),
        (["just text"], "quality.referenceSet.uri: bad.jsonl:1 is not a JSON object"),
    ],
)
def test_a_malformed_reference_row_names_the_field_and_the_row(
    tmp_path: Path, rows: list[object], expected: str
) -> None:
    with pytest.raises(ValueError) as raised:
        reference_rows(write_jsonl(tmp_path / "bad.jsonl", rows), ReferenceSet(uri="/r"), FIELD)
    assert expected in str(raised.value)


def test_a_missing_or_empty_reference_set_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"quality.referenceSet.uri: .*/gone.jsonl does not exist"):
        reference_rows(tmp_path / "gone.jsonl", ReferenceSet(uri="/r"), FIELD)
    with pytest.raises(FileNotFoundError, match=r"quality.referenceSet.uri: no \*.jsonl files under"):
        reference_rows(tmp_path, ReferenceSet(uri="/r"), FIELD)
    with pytest.raises(ValueError, match="holds no rows"):
        reference_rows(write_jsonl(tmp_path / "empty.jsonl", []), ReferenceSet(uri="/r"), FIELD)


def test_lm_eval_scores_are_named_by_task_metric_and_filter() -> None:
    assert lm_eval_metric_name("arc_easy", "acc,none") == "lm-eval/arc_easy/acc"
    assert (
        lm_eval_metric_name("gsm8k", "exact_match,strict-match") == "lm-eval/gsm8k/exact_match/strict-match"
    )
    assert lm_eval_metric_name("arc_easy", "acc_stderr,none") is None
    assert lm_eval_metric_name("arc_easy", "alias") is None
    assert lm_eval_metric_name("arc_easy", "sample_len") is None
    results = {"arc_easy": {"alias": "arc_easy", "acc,none": 0.5, "acc_stderr,none": "N/A", "sample_len": 8}}
    assert lm_eval_scores(results) == {"lm-eval/arc_easy/acc": 0.5}


def test_lower_is_better_lm_eval_scores_are_left_out_when_directions_are_given() -> None:
    results = {"wiki": {"word_perplexity,none": 31.2, "bits_per_byte,none": 0.9, "acc,none": 0.4}}
    directions = {"wiki": {"word_perplexity": False, "bits_per_byte": False, "acc": True}}
    assert lm_eval_scores(results, directions) == {"lm-eval/wiki/acc": 0.4}
    assert set(lm_eval_scores(results)) == {
        "lm-eval/wiki/word_perplexity", "lm-eval/wiki/bits_per_byte", "lm-eval/wiki/acc"
    }  # fmt: skip
