"""The PKI of the local control plane: one CA, the API server's serving cert, an admin client cert
(``O=system:masters``) and the service-account signing key pair.

Written with ``cryptography`` rather than shelling out to openssl: one dependency the test tier has
anyway, and no parsing of openssl's config syntax.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
API_SERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
API_SERVER_IPS = ("127.0.0.1", "10.96.0.1")
FRONT_PROXY_NAME = "front-proxy-client"
"""Common name of the API server's client cert towards aggregated API servers (KEDA's metrics API
server): the only name allowed to pass a user on in request headers (``--requestheader-allowed-names``)."""


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files under one directory."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.root / "apiserver.crt"

    @property
    def server_key(self) -> Path:
        return self.root / "apiserver.key"

    @property
    def admin_cert(self) -> Path:
        return self.root / "admin.crt"

    @property
    def admin_key(self) -> Path:
        return self.root / "admin.key"

    @property
    def sa_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.root / "sa.pub"

    @property
    def front_proxy_cert(self) -> Path:
        """The client cert the API server presents to aggregated API servers (``FRONT_PROXY_NAME``)."""
        return self.root / "front-proxy-client.crt"

    @property
    def front_proxy_key(self) -> Path:
        return self.root / "front-proxy-client.key"

    def complete(self) -> bool:
        files: tuple[Path, ...] = (self.ca_cert, self.server_cert, self.server_key, self.admin_cert)
        files += (self.admin_key, self.front_proxy_cert, self.front_proxy_key)
        return all(p.exists() for p in (*files, self.sa_key, self.sa_pub))


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    subject: x509.Name,
    usage: list[x509.ObjectIdentifier],
    san: list[x509.GeneralName] | None = None,
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    key = _new_key()
    builder = _builder(subject, ca_cert.subject, key).add_extension(
        x509.ExtendedKeyUsage(usage), critical=False
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def generate(pki: Pki) -> None:
    """Writes a fresh PKI into ``pki.root`` (overwriting what is there)."""
    pki.root.mkdir(parents=True, exist_ok=True)
    ca_key = _new_key()
    ca_name = _name("modelfleet-local-ca")
    ca_cert = (
        _builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in API_SERVER_DNS_NAMES]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in API_SERVER_IPS]
    server_cert, server_key = _leaf(
        ca_cert, ca_key, _name("kube-apiserver"), [ExtendedKeyUsageOID.SERVER_AUTH], san
    )
    admin_cert, admin_key = _leaf(
        ca_cert, ca_key, _name("modelfleet-admin", "system:masters"), [ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    proxy_cert, proxy_key = _leaf(ca_cert, ca_key, _name(FRONT_PROXY_NAME), [ExtendedKeyUsageOID.CLIENT_AUTH])
    _write_key(proxy_key, pki.front_proxy_key)
    pki.front_proxy_cert.write_bytes(proxy_cert.public_bytes(serialization.Encoding.PEM))
    for cert, path in ((ca_cert, pki.ca_cert), (server_cert, pki.server_cert), (admin_cert, pki.admin_cert)):
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, pki.ca_key)
    _write_key(server_key, pki.server_key)
    _write_key(admin_key, pki.admin_key)
    sa_key = _new_key()
    _write_key(sa_key, pki.sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def issue_serving_cert(
    pki: Pki,
    cert_path: Path,
    key_path: Path,
    common_name: str,
    ips: tuple[str, ...] = ("127.0.0.1",),
    dns_names: tuple[str, ...] = (),
) -> None:
    """Writes a serving cert signed by the plane's CA, for a server the API server calls (an admission
    or conversion webhook, an aggregated API server): its ``caBundle`` is then the plane's ``ca.crt``."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    san += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    cert, key = _leaf(ca_cert, ca_key, _name(common_name), [ExtendedKeyUsageOID.SERVER_AUTH], san)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)
