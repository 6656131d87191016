"""Throwaway TLS material and a tiny nsqd auth server, for the TLS/AUTH integration tests.

``make_certs(directory)`` writes, with the ``openssl`` command line tool, a CA, an nsqd server
certificate it signed (SAN 127.0.0.1 and localhost), a client certificate it signed (for
``--tls-client-auth-policy``), and an unrelated second CA (the "wrong CA" of the failure tests).

``AuthServer`` is what nsqd's ``--auth-http-address`` points at: it answers ``GET /auth`` with
full publish/subscribe rights for the one secret it accepts and HTTP 403 for any other, and
records the queries nsqd made (remote_ip, tls, secret) so a test can check what nsqd asked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["AuthServer", "Certs", "make_certs", "openssl_path"]


def openssl_path() -> str | None:
    return shutil.which("openssl")


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing nsqd uses


def _openssl(*args: str, cwd: Path) -> None:
    tool = openssl_path()
    if tool is None:
        raise RuntimeError("the openssl command line tool is needed to make test certificates")
    done = subprocess.run([tool, *args], cwd=cwd, capture_output=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{done.stderr.decode(errors='replace')}")


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-sha256",
        "-subj", f"/CN=almanet test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        "-keyout", key.name, "-out", cert.name,
        cwd=directory,
    )  # fmt: skip
    return cert, key


def _make_leaf(directory: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    cert, key, csr, ext = (directory / f"{name}{s}" for s in (".pem", "-key.pem", ".csr", ".ext"))
    ext.write_text(extensions)
    _openssl(
        "req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
        "-keyout", key.name, "-out", csr.name,
        cwd=directory,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr.name, "-CA", ca[0].name, "-CAkey", ca[1].name, "-CAcreateserial",
        "-days", "2", "-sha256", "-extfile", ext.name, "-out", cert.name,
        cwd=directory,
    )  # fmt: skip
    return cert, key


def make_certs(directory: Path) -> Certs:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _make_ca(directory, "ca")
    other_ca, _ = _make_ca(directory, "other-ca")
    server = _make_leaf(
        directory,
        "server",
        ca,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    client = _make_leaf(
        directory,
        "client",
        ca,
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
    )
    return Certs(ca[0], server[0], server[1], client[0], client[1], other_ca)


class AuthServer:
    """A threaded HTTP auth server for nsqd: one accepted secret, 403 for the rest."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.queries: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
                owner.queries.append(query)
                if url.path != "/auth":
                    self._answer(404, {"message": "NOT_FOUND"})
                elif query.get("secret") != owner.secret:
                    self._answer(403, {"message": "NOT_AUTHORIZED"})
                else:
                    self._answer(
                        200,
                        {
                            "ttl": 3600,
                            "identity": "almanet-test",
                            "identity_url": "",
                            "authorizations": [
                                {"permissions": ["subscribe", "publish"], "topic": ".*", "channels": [".*"]}
                            ],
                        },
                    )

            def _answer(self, status: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: pytest shows failures, not every request

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="nsqd-auth", daemon=True)

    def __enter__(self) -> AuthServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
