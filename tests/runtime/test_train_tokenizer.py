"""Method `tokenizer`: a tokenizer trained on the data set's text, loadable with `AutoTokenizer`, reported
to the operator as output kind `tokenizer`, and used by a later job that pre-trains a model from scratch.
The two jobs are one case of the session's shared one-rank launch (tests.runtime.shared_launches): each
does what the `train` command does with its config (a tokenizer job: rank 0 trains it, no Trainer)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from modelfleet_api import contract
from modelfleet_api.lineage import OutputKind
from modelfleet_api.runtime_config import TrainingProgress, TrainingRuntimeConfig

from hack import tinymodel
from tests.runtime.conftest import KubeApi, TinyAssets, runtime_config, step_losses
from tests.runtime.shared_launches import SharedLaunches, shared_case
from tests.runtime.trainer_runs import Case, Run

pytestmark = pytest.mark.runtime

ROLES = ["<|user|>", "<|assistant|>"]
TEMPLATE = tinymodel.CHAT_TEMPLATE
PROGRESS = "tok-progress"
"""The ConfigMap the tokenizer job reports progress to."""


def tokenizer_config(tiny: TinyAssets, output: Path, **tokenizer: Any) -> dict[str, Any]:
    """A tokenizer job's runtime config (wire form) on the tiny pre-training texts: no model."""
    config = runtime_config(
        tiny,
        output,
        method={"type": "tokenizer", "tokenizer": tokenizer},
        dataset={"uri": str(tiny.pretrain), "format": "jsonl"},
    )
    del config["model"]
    config["topology"] = {"nodes": 1, "gpusPerNode": 1}
    return config


@shared_case(nproc=1)
def tokenizer_then_pretrain(request: pytest.FixtureRequest, directory: Path) -> Case:
    """A tokenizer job reporting its progress, then a from-scratch pre-training job using its tokenizer."""
    tiny: TinyAssets = request.getfixturevalue("tiny")
    kube_api: KubeApi = request.getfixturevalue("session_kube_api")
    tokenizer_dir = directory / "tokenizer"
    job = tokenizer_config(
        tiny,
        tokenizer_dir,
        algorithm="bpe",
        vocabSize=320,
        specialTokens={"additional": ROLES},
        chatTemplate=TEMPLATE,
    )
    progress_env = {
        contract.ENV_PROGRESS_CONFIGMAP: PROGRESS,
        contract.ENV_POD_NAMESPACE: "ml",
        "KUBECONFIG": str(kube_api.kubeconfig),
    }
    pretrain = runtime_config(
        tiny,
        directory / "model",
        model={
            "uri": str(tiny.model),
            "fromScratch": True,
            "configOverrides": {"num_hidden_layers": 1},
            "tokenizerUri": str(tokenizer_dir),
        },
        method={"type": "pretrain"},
        dataset={"uri": str(tiny.pretrain), "format": "jsonl"},
    )
    pretrain["hyperparameters"].update(maxSteps=6, sequenceLength=32)
    pretrain["topology"] = {"nodes": 1, "gpusPerNode": 1}
    return Case(directory, [Run("tokenizer", job, env=progress_env), Run("pretrain", pretrain)])


def test_a_trained_tokenizer_is_reported_and_a_from_scratch_pretrain_uses_it(
    tiny: TinyAssets, shared_trainer_runs: SharedLaunches, session_kube_api: KubeApi
) -> None:
    """The pair the method exists for: train a tokenizer, then pre-train a model of the same architecture
    from scratch with it (`model.tokenizerUri`), the way two TrainingJobs run one after the other."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    case = shared_trainer_runs.case(tokenizer_then_pretrain)
    case.check()
    tokenizer_dir, model_dir = case.directory / "tokenizer", case.directory / "model"

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    # what the BPE trainer could learn from the corpus, up to the size asked for
    assert 256 + 3 + len(ROLES) < len(tokenizer) <= 320
    assert (tokenizer.pad_token, tokenizer.bos_token, tokenizer.eos_token) == ("<pad>", "<s>", "</s>")
    assert [tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id] == [0, 1, 2]
    text = "How many purple eels are there? There are 7 purple eels."
    ids = tokenizer(text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and tokenizer.decode(ids[1:]) == text
    assert len(ids) < len(text.encode()) / 2, "merges learnt from the corpus shorten its sentences"
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    tokens = tokenizer.tokenize(rendered)
    assert tokens[0] == ROLES[0] and tokens[-1] == ROLES[1], f"role markers stay whole: {tokens}"

    rows = len(tiny.pretrain.read_text().splitlines())
    reports = [
        TrainingProgress.model_validate_json(body["data"][contract.PROGRESS_KEY])
        for body in session_kube_api.patches_of(PROGRESS)
    ]
    assert reports, "rank 0 sent no progress"
    final = reports[-1]
    assert (final.step, final.total_steps) == (rows, rows), "documents read out of the data set's"
    assert final.result is not None
    assert (final.result.kind, final.result.uri, final.result.step) == (
        OutputKind.TOKENIZER,
        str(tokenizer_dir),
        None,
    )

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.vocab_size == len(tokenizer) == len(AutoTokenizer.from_pretrained(model_dir))
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    assert (model.config.bos_token_id, model.config.eos_token_id) == (1, 2)
    losses = step_losses(model_dir)
    assert losses[6] < losses[1], losses


@pytest.mark.parametrize(
    ("algorithm", "unk", "text", "decoded"),
    [
        ("unigram", "<unk>", "How many red cats are there?", "How many red cats are there?"),
        ("wordpiece", "<unk>", "How many RED cats are there?", "how many red cats are there?"),
    ],
)
def test_unigram_and_wordpiece_tokenizers_spell_the_corpus_back(
    tiny: TinyAssets, tmp_path: Path, algorithm: str, unk: str, text: str, decoded: str
) -> None:
    """The runtime's own training function on the config the operator renders (one process, no torchrun):
    each algorithm's normalisation and decoding, and an unknown token for what it cannot spell."""
    from modelfleet_train.tokenizer_training import train_tokenizer
    from transformers import AutoTokenizer

    wire = tokenizer_config(tiny, tmp_path / "out", algorithm=algorithm, vocabSize=200)
    config = TrainingRuntimeConfig.model_validate(wire)
    rows = train_tokenizer(config, tmp_path / "out", publisher=None)
    assert rows == len(tiny.pretrain.read_text().splitlines())

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.unk_token == unk and tokenizer.unk_token_id == 3
    assert len(tokenizer) <= 200
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.unk_token_id not in ids
    assert tokenizer.decode(ids) == decoded
    assert tokenizer.unk_token_id in tokenizer("ζ", add_special_tokens=False)["input_ids"], (
        "not in the corpus"
    )
    saved = json.loads((tmp_path / "out" / "tokenizer.json").read_text())
    assert saved["model"]["type"] == {"unigram": "Unigram", "wordpiece": "WordPiece"}[algorithm]
