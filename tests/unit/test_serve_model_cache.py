"""Where the serving launcher finds or puts a model, for each kind of URI, and `--print-command`
showing those paths without downloading anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from modelfleet_serve import launcher
from modelfleet_serve.model_cache import planned_path

pytestmark = pytest.mark.unit

BLOB = "https://acct01.blob.core.windows.net/models/llama-3-8b"


@pytest.mark.parametrize(
    ("uri", "revision", "expected"),
    [
        ("pvc://models/llama", None, "/mnt/pvc/models/llama"),
        ("/models/llama", None, "/models/llama"),
        ("file:///models/llama", None, "/models/llama"),
        (BLOB, None, "/cache/blob/acct01.blob.core.windows.net--models--llama-3-8b"),
        ("az://models/llama", None, "/cache/blob/models--llama"),
        ("meta-llama/Llama-3.1-8B", "v2", "/cache/hub/meta-llama--Llama-3.1-8B--v2"),
        ("meta-llama/Llama-3.1-8B", None, "/cache/hub/meta-llama--Llama-3.1-8B--main"),
    ],
)
def test_planned_path_of_every_uri_kind(
    uri: str, revision: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "acct01")
    assert planned_path(uri, Path("/cache"), "model.uri", revision) == Path(expected)


def test_planned_path_names_the_field_of_an_unusable_uri(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"model.uri: 'ftp://x/y' must be a path in the pod"):
        planned_path("ftp://x/y", Path("/cache"), "model.uri")
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT", raising=False)
    with pytest.raises(
        ValueError, match=r"adapter.uri: az://models/x is an az:// URI but AZURE_STORAGE_ACCOUNT"
    ):
        planned_path("az://models/x", Path("/cache"), "adapter.uri")


def test_print_command_shows_the_cache_paths_of_remote_models(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "model": {"uri": BLOB},
        "servedModelName": "llama",
        "engine": {"type": "vllm", "settings": {"loraAdapters": [{"name": "sql", "uri": f"{BLOB}-sql"}]}},
        "cacheDir": str(tmp_path / "cache"),
    }
    path = tmp_path / "serve.json"
    path.write_text(json.dumps(config))
    assert launcher.main(["--config", str(path), "--print-command"]) == 0
    argv = capsys.readouterr().out.split()
    model = tmp_path / "cache" / "blob" / "acct01.blob.core.windows.net--models--llama-3-8b"
    assert argv[:3] == ["vllm", "serve", str(model)]
    assert argv[argv.index("--lora-modules") + 1] == f"sql={model}-sql"
    assert not (tmp_path / "cache").exists(), "--print-command downloads nothing"
