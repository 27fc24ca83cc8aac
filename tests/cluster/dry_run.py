"""Server-side dry runs of modelfleet manifests through the tests' API client.

For an object that does not exist, ``kubectl apply --dry-run=server`` sends a create with
``dryRun=All`` and strict field validation: the API server decodes it (unknown and duplicate fields
refused), checks the OpenAPI schema, defaults it and runs every CEL rule, and stores nothing. This
sends the same request without a kubectl process per manifest: some 500 manifests went through
kubectl (a process, its discovery, a GET and the create each) in 18 s on an idle machine and 46-52 s
beside the other test sessions. The message is the API server's own, which kubectl prints after its
``Error from server (...)`` prefix; ``test_crd_validation`` shows one refusal through kubectl itself.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from modelfleet_api.crdgen import KINDS

PLURALS = {kind.names.kind: kind.names.plural for kind in KINDS}


class Verdict(NamedTuple):
    accepted: bool
    message: str
    """The API server's message when refused (its Status), "" when accepted."""


def dry_run_create(api_client: client.ApiClient, namespace: str, manifest: dict[str, Any]) -> Verdict:
    group, version = manifest["apiVersion"].split("/")
    try:
        client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            group,
            version,
            namespace,
            PLURALS[manifest["kind"]],
            manifest,
            dry_run="All",
            field_validation="Strict",
        )
    except ApiException as refused:
        if refused.status is None or refused.status >= 500 or not refused.body:
            raise  # the API server failed; it did not judge the manifest
        return Verdict(False, str(json.loads(refused.body)["message"]))
    return Verdict(True, "")


def assert_refused(verdict: Verdict, expected: str | tuple[str, ...]) -> None:
    """The manifest was refused, with each of ``expected`` in the API server's message."""
    assert not verdict.accepted, f"accepted, expected a refusal with {expected!r}"
    for text in (expected,) if isinstance(expected, str) else expected:
        assert text in verdict.message, verdict.message
