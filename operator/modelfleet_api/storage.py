"""Storage URIs: one grammar for every place a model, a data set, a checkpoint or a result lives.

- `local`: `/PATH` or `file:///PATH`, a path in the pod (baked into the image, or mounted);
- `pvc`: `pvc://CLAIM/PATH`, read at `PVC_MOUNT_ROOT/CLAIM/PATH` (the operator mounts the claim there);
- `blob`: `az://CONTAINER/PATH` (account from `AZURE_STORAGE_ACCOUNT`) or
  `https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH`, Azure Blob Storage;
- `hub`: `ORG/NAME` or `NAME`, a Hugging Face hub id.

Every other spelling is refused: a relative path (which directory would it be relative to?), a web
page (`https://huggingface.co/ORG/NAME` is a page, not a model: give the hub id), any other scheme,
spaces, a query string (no SAS tokens in a spec) and `..` segments. Each field lists the kinds it
accepts (``uri_field``): a hub id only where a hub id makes sense (models, data sets, adapters,
tokenizers), and nothing but blob storage for a results prefix.

The grammar is a set of regular expressions valid in both RE2 (the API server's CEL) and Python, so
the CRD rule and the models' validator are the same text; ``StorageUri`` parses a valid URI into its
parts for the runtimes and the operator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field
from pydantic.config import JsonDict

from modelfleet_api.contract import PVC_MOUNT_ROOT

URI_MAX_LENGTH = 1024


class UriKind(StrEnum):
    LOCAL = "local"
    PVC = "pvc"
    BLOB = "blob"
    HUB = "hub"


_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_PATH = r"(/\S*)?"
_CONTAINER = r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]"
"""An Azure Blob container: 3-63 lowercase letters, digits and `-`."""
_BLOB_PATH = r"(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?"
"""URL characters only (percent-encode others); no `?` (no SAS token) and no `#`."""
BLOB_HOST_SUFFIX = ".blob.core.windows.net"
_HUB_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"

PATTERNS: dict[UriKind, str] = {
    UriKind.LOCAL: r"^(file://)?/\S*$",
    UriKind.PVC: rf"^pvc://{_SUBDOMAIN}{_PATH}$",
    UriKind.BLOB: rf"^(az://|https://[a-z0-9]{{3,24}}\.blob\.core\.windows\.net/){_CONTAINER}{_BLOB_PATH}$",
    UriKind.HUB: rf"^{_HUB_PART}(/{_HUB_PART})?$",
}
"""Full-match regular expression of each kind (RE2 and Python alike)."""
PARENT_SEGMENT = r"(^|/)\.\.(/|$)"
"""A `..` segment, refused in every kind (it would leave the mounted claim or the prefix)."""

SPELLINGS: dict[UriKind, str] = {
    UriKind.LOCAL: "a path in the pod (/PATH)",
    UriKind.PVC: "pvc://CLAIM/PATH",
    UriKind.BLOB: "az://CONTAINER/PATH (or https://ACCOUNT.blob.core.windows.net/CONTAINER/PATH)",
    UriKind.HUB: "a Hugging Face id (ORG/NAME)",
}

DURABLE = frozenset({UriKind.PVC, UriKind.BLOB})
"""Kinds that outlive the pod: where a run's results must go."""
MODEL_SOURCES = frozenset(UriKind)
FILE_SOURCES = frozenset({UriKind.LOCAL, UriKind.PVC, UriKind.BLOB})
BLOB_ONLY = frozenset({UriKind.BLOB})
POD_FILES = frozenset({UriKind.LOCAL, UriKind.BLOB})
"""What a benchmark pod reads from a sweep's workload (it mounts only the claims of the served model, to
read its tokenizer, and of the quality section's files)."""
TOKENIZERS = frozenset({UriKind.LOCAL, UriKind.HUB})
"""What `AutoTokenizer.from_pretrained` reads as given."""


def allowed_text(kinds: frozenset[UriKind]) -> str:
    """What a field accepts, in words (order: local, pvc, blob, hub)."""
    spelled = [SPELLINGS[k] for k in UriKind if k in kinds]
    listed = ", ".join(spelled[:-1]) + f" or {spelled[-1]}" if len(spelled) > 1 else spelled[0]
    hint = "; a web page is not a model: give the hub id" if UriKind.HUB in kinds else ""
    return f"must be {listed} (no spaces, no query string, no '..'{hint})"


def kind_of(text: str, kinds: frozenset[UriKind] = MODEL_SOURCES) -> UriKind | None:
    """The kind ``text`` is spelled as, among ``kinds``, or None."""
    if re.search(PARENT_SEGMENT, text):
        return None
    return next((k for k in UriKind if k in kinds and re.fullmatch(PATTERNS[k], text)), None)


@dataclass(frozen=True)
class BlobParts:
    account: str | None
    """Storage account named by an https URI; None for `az://` (the account comes from the pod's env)."""
    container: str
    path: str
    """Path inside the container, without leading or trailing `/` (empty: the whole container)."""


@dataclass(frozen=True)
class StorageUri:
    """A valid storage URI and its kind."""

    text: str
    kind: UriKind

    @classmethod
    def parse(cls, text: str, kinds: frozenset[UriKind] = MODEL_SOURCES, field: str = "uri") -> StorageUri:
        """The URI, or ``ValueError`` naming ``field`` and what it accepts."""
        kind = kind_of(text, kinds)
        if kind is None:
            raise ValueError(f"{field}: {text!r} {allowed_text(kinds)}")
        return cls(text, kind)

    @property
    def pvc_claim(self) -> str | None:
        """The claim of a `pvc://` URI, else None."""
        if self.kind is not UriKind.PVC:
            return None
        return self.text.removeprefix("pvc://").split("/", 1)[0]

    def local_path(self, pvc_root: str = PVC_MOUNT_ROOT) -> Path:
        """Where a `local` or `pvc` URI is in the pod."""
        if self.kind is UriKind.PVC:
            return Path(pvc_root) / self.text.removeprefix("pvc://").strip("/")
        if self.kind is UriKind.LOCAL:
            return Path(self.text.removeprefix("file://"))
        raise ValueError(f"{self.text!r} is a {self.kind} URI, not a path in the pod")

    def blob(self) -> BlobParts:
        """The parts of a `blob` URI."""
        if self.kind is not UriKind.BLOB:
            raise ValueError(f"{self.text!r} is a {self.kind} URI, not Azure Blob Storage")
        if self.text.startswith("az://"):
            account, rest = None, self.text.removeprefix("az://")
        else:
            host, _, rest = self.text.removeprefix("https://").partition("/")
            account = host.removesuffix(BLOB_HOST_SUFFIX)
        container, _, path = rest.partition("/")
        return BlobParts(account=account, container=container, path=path.strip("/"))


def uri_rule(kinds: frozenset[UriKind]) -> JsonDict:
    """The CEL rule (a CRD ``x-kubernetes-validations`` entry) of a URI field accepting ``kinds``."""
    alternatives = "|".join(PATTERNS[k].removeprefix("^").removesuffix("$") for k in UriKind if k in kinds)
    return {
        "rule": f'self.matches(r"^({alternatives})$") && !self.matches(r"{PARENT_SEGMENT}")',
        "message": allowed_text(kinds),
        "reason": "FieldValueInvalid",
    }


def uri_constraints(kinds: frozenset[UriKind], max_length: int = URI_MAX_LENGTH) -> Any:
    """The length bounds and CEL rule of a URI field accepting ``kinds`` (``Annotated`` metadata)."""
    return Field(
        min_length=1, max_length=max_length, json_schema_extra={"x-kubernetes-validations": [uri_rule(kinds)]}
    )


def uri_check(kinds: frozenset[UriKind]) -> AfterValidator:
    """The models' side of ``uri_rule``: the same grammar, the same message."""

    def check(value: str) -> str:
        if kind_of(value, kinds) is None:
            raise ValueError(allowed_text(kinds))
        return value

    return AfterValidator(check)


ModelUri = Annotated[str, uri_constraints(MODEL_SOURCES), uri_check(MODEL_SOURCES)]
"""A model, adapter, tokenizer or data set: a path in the pod, a PVC, blob storage or a hub id."""
FileUri = Annotated[str, uri_constraints(FILE_SOURCES), uri_check(FILE_SOURCES)]
"""A file or directory the pod reads or writes: a path in the pod, a PVC or blob storage (no hub id).
Where a run's results go, the TrainingJob's rules also refuse a path in the pod (lost with the pod)."""
BlobUri = Annotated[str, uri_constraints(BLOB_ONLY), uri_check(BLOB_ONLY)]
"""A blob storage prefix."""
PodFileUri = Annotated[str, uri_constraints(POD_FILES), uri_check(POD_FILES)]
"""A file a benchmark pod reads: a path in the pod or blob storage."""
TokenizerUri = Annotated[str, uri_constraints(TOKENIZERS), uri_check(TOKENIZERS)]
"""A tokenizer: a path in the pod or a hub id."""
