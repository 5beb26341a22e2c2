"""A local https server for Client ID Metadata Documents, with a throwaway CA made for the test.

The MCP SDK only accepts an ``https`` ``client_metadata_url``, so the document is served over TLS
on 127.0.0.1 with a certificate for ``localhost`` and ``127.0.0.1``; the authorization server is
told to trust the CA through ``SSL_CERT_FILE``.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.idp import free_port


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the CA certificate (PEM): what SSL_CERT_FILE points at
    cert: Path
    key: Path


def make_certificates(directory: Path) -> TlsFiles:
    """A CA and a server certificate it signed, valid for DNS ``localhost`` and IP ``127.0.0.1``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ringfence tests CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return files


@dataclass
class HttpsDocuments:
    """Serves JSON documents at fixed paths over https on 127.0.0.1 and counts the fetches."""

    tls: TlsFiles
    documents: dict[str, Any] = field(default_factory=dict)
    fetches: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self._server: uvicorn.Server | None = None

    def url(self, path: str, host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    async def _answer(self, request: Request) -> Response:
        self.fetches.append(request.url.path)
        document = self.documents.get(request.url.path)
        if document is None:
            return Response(status_code=404)
        return Response(json.dumps(document), media_type="application/json", headers={"cache-control": "no-store"})

    def start(self) -> HttpsDocuments:
        self._server = serve_https(Starlette(routes=[Route("/{path:path}", self._answer)]), self.port, self.tls)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True


def serve_https(app: Any, port: int, tls: TlsFiles) -> uvicorn.Server:
    """``app`` served over https on 127.0.0.1:``port`` in a daemon thread, once it is listening."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                                           ssl_certfile=str(tls.cert), ssl_keyfile=str(tls.key)))
    threading.Thread(target=server.run, daemon=True).start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the https server on port {port} did not start")
        time.sleep(0.02)
    return server
