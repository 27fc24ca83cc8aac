"""A fake Azure Resource Manager for AKS agent pools, served over HTTPS from a thread.

It implements what ``ContainerServiceClient.agent_pools`` calls: list, get and PUT (create or update)
as a long-running operation (201/200 with ``Azure-AsyncOperation`` and ``Location`` headers; the
operation is InProgress for ``polls_until_done`` polls, then Succeeded and the pool settles), plus the
App Service managed-identity token endpoint (``IDENTITY_ENDPOINT``), so ``DefaultAzureCredential``
authenticates against it unchanged. HTTPS because the SDK's bearer-token policy refuses plain HTTP;
the certificate is self-signed for 127.0.0.1 and trusted through ``connection_verify`` (in process) or
``REQUESTS_CA_BUNDLE`` (a subprocess).

Faults are queued with :meth:`FakeArm.fail_next`: a status, an ARM error body and headers, e.g. 429
with Retry-After, or 400 ``{"error": {"code": "QuotaExceeded", "message": ...}}`` as ARM sends them.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

IDENTITY_HEADER = "fake-identity-header"
TOKEN = "fake-arm-token"
_POOLS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerService/"
    r"managedClusters/(?P<cluster>[^/]+)/agentPools(?:/(?P<name>[^/?]+))?$",
    re.IGNORECASE,
)
_OPERATION = re.compile(r"^/operations/(?P<id>[0-9a-f]+)$")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(cert, key) PEM files for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-arm")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "arm.crt", directory / "arm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Fault:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    body: dict[str, Any] | None
    authorization: str | None


class FakeArm:
    """State of the fake: pools by name (ARM JSON), pending operations, queued faults, requests seen."""

    def __init__(self, directory: Path, *, polls_until_done: int = 1) -> None:
        self.cert, self._key = self_signed(directory)
        self.polls_until_done = polls_until_done
        self.latency = 0.0
        """Seconds every agent-pool request takes (a slow ARM keeps the operator's passes in flight)."""
        self.pools: dict[str, dict[str, Any]] = {}
        self.requests: list[Request] = []
        self._faults: list[tuple[str, Fault]] = []
        self._operations: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self._key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-arm", daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def identity_endpoint(self) -> str:
        return f"{self.url}/msi/token"

    def start(self) -> FakeArm:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def add_pool(
        self, name: str, vm_size: str, *, max_count: int, count: int = 0, spot: bool = False, **extra: Any
    ) -> None:
        """A pool that exists already (as Terraform would have made it)."""
        properties = {
            "vmSize": vm_size,
            "count": count,
            "enableAutoScaling": True,
            "minCount": 0,
            "maxCount": max_count,
            "mode": "User",
            "osType": "Linux",
            "type": "VirtualMachineScaleSets",
            "scaleSetPriority": "Spot" if spot else "Regular",
            "provisioningState": "Succeeded",
            **extra,
        }
        with self._lock:
            self.pools[name] = {"name": name, "properties": properties}

    def fail_next(self, method: str, fault: Fault, times: int = 1) -> None:
        """The next ``times`` requests with ``method`` (GET/PUT) to the pools get ``fault``."""
        with self._lock:
            self._faults.extend((method, fault) for _ in range(times))

    def puts(self) -> list[Request]:
        return [r for r in self.requests if r.method == "PUT"]

    # ---- request handling (server threads) ----------------------------------------------------------
    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            for index, (wanted, fault) in enumerate(self._faults):
                if wanted == method:
                    del self._faults[index]
                    return fault
        return None

    def handle(self, method: str, path: str, body: dict[str, Any] | None) -> tuple[int, Any, dict[str, str]]:
        route = path.split("?", 1)[0]
        if route == "/msi/token":
            expires = int(time.time()) + 3600
            return 200, {"access_token": TOKEN, "expires_on": str(expires), "token_type": "Bearer"}, {}
        operation = _OPERATION.match(route)
        if operation is not None:
            return self._poll(operation["id"])
        match = _POOLS.match(route)
        if match is None:
            return 404, _error("NotFound", f"no route {route}"), {}
        time.sleep(self.latency)
        fault = self._take_fault(method)
        if fault is not None:
            return fault.status, fault.body, fault.headers
        name = match["name"]
        with self._lock:
            if method == "GET" and name is None:
                return 200, {"value": list(self.pools.values())}, {}
            if method == "GET":
                if name not in self.pools:
                    return 404, _error("NotFound", f"agent pool {name} not found"), {}
                return 200, self.pools[name], {}
            if method == "PUT" and name is not None and body is not None:
                return self._put(route, name, body)
        return 405, _error("MethodNotAllowed", f"{method} {route}"), {}

    def _put(self, route: str, name: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        exists = name in self.pools
        properties = dict(body.get("properties", {}))
        properties["provisioningState"] = "Updating" if exists else "Creating"
        pool = {"name": name, "id": route, "properties": properties}
        self.pools[name] = pool
        op_id = uuid.uuid4().hex
        self._operations[op_id] = {"pool": name, "polls": 0}
        location = f"{self.url}/operations/{op_id}"
        headers = {"Azure-AsyncOperation": location, "Location": location, "Retry-After": "0"}
        return (200 if exists else 201), pool, headers

    def _poll(self, op_id: str) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            operation = self._operations.get(op_id)
            if operation is None:
                return 404, _error("NotFound", "no such operation"), {}
            operation["polls"] += 1
            if operation["polls"] < self.polls_until_done:
                return 200, {"status": "InProgress"}, {"Retry-After": "0"}
            self.pools[operation["pool"]]["properties"]["provisioningState"] = "Succeeded"
            return 200, {"status": "Succeeded"}, {}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _handler(arm: FakeArm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            arm.requests.append(Request(self.command, self.path, body, self.headers.get("Authorization")))
            status, payload, headers = arm.handle(self.command, self.path, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_PUT = _serve

    return Handler
