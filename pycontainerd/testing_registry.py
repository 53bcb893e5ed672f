"""A private registry for tests: Debian's ``docker-registry`` on loopback, with TLS, auth and faults.

Nothing here reaches the network: the registry (the CNCF distribution registry that
Debian packages as ``docker-registry``) listens on ``127.0.0.1`` on a free port, with
its storage, config, certificates and logs in a temporary directory that
:meth:`PrivateRegistry.close` removes with the process.

Modes (combinable where it makes sense):

* plain HTTP (the default);
* ``tls=True``: a CA generated per registry (``openssl``), a certificate for
  ``127.0.0.1`` and ``localhost`` signed by it; :attr:`PrivateRegistry.ca_file` is the
  CA to trust;
* ``auth="basic"``: htpasswd (bcrypt, made by ``htpasswd -B`` of apache2-utils) with
  :attr:`PrivateRegistry.users`;
* ``auth="token"``: the registry's ``token`` auth, and a small token server
  (:class:`TokenServer`) in this process that checks the same users with Basic auth
  and signs JWTs (RS256, ``openssl dgst``) with a key whose certificate is the
  registry's root bundle, so the real Bearer flow runs against the real registry.
  Anonymous requests get pull access only when ``anonymous_pull`` is set.

:class:`FaultProxy` sits between a client and a registry (plain HTTP) and, for the
requests matching a rule, cuts the answer after N body bytes, stalls, answers a
status (429, 503, an HTML page, a redirect loop), or flips a byte, a given number of
times.

Example::

    from pycontainerd import testing_registry

    with testing_registry.PrivateRegistry() as registry:
        client.push("docker.io/test/img:1", f"{registry.host}/test/img:1", plain_http=True)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REGISTRY_BINARY", "Fault", "FaultProxy", "PrivateRegistry", "TokenServer", "free_port"]

#: The registry binary (Debian package ``docker-registry``).
REGISTRY_BINARY = "docker-registry"
_SERVICE = "pycontainerd-test-registry"
_ISSUER = "pycontainerd-test-issuer"
_START_TIMEOUT = 30.0
_TOKEN_LIFETIME = 300


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(args, input=stdin, capture_output=True, check=True).stdout


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class _Certs:
    ca_cert: str
    ca_key: str
    server_cert: str
    server_key: str


def make_ca(directory: str) -> _Certs:
    """A CA and a server certificate for ``127.0.0.1``/``localhost`` signed by it, in ``directory``."""
    ca_key, ca_cert = os.path.join(directory, "ca.key"), os.path.join(directory, "ca.crt")
    key, csr, cert = (os.path.join(directory, name) for name in ("server.key", "server.csr", "server.crt"))
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_cert,
         "-days", "2", "-subj", "/CN=pycontainerd test CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=127.0.0.1")
    ext = os.path.join(directory, "server.ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyEncipherment\n")
    _run("openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext)
    return _Certs(ca_cert, ca_key, cert, key)


class TokenServer:
    """A token server for the registry's ``token`` auth: Basic-authenticated users get JWTs.

    ``GET /token?service=...&scope=repository:<name>:<actions>...`` answers
    ``{"token": ..., "access_token": ..., "expires_in": ...}``. A known user with the
    right password gets every action asked for; an anonymous request gets ``pull`` when
    ``anonymous_pull`` is set, else nothing; a wrong password is a 401.

    Attributes:
        realm: The URL to configure as the registry's realm.
        cert_file: The signing certificate (the registry's ``rootcertbundle``).
        issued: How many tokens were issued (tests check caching with it).
        requests: The query of each request, in order.
    """

    def __init__(self, directory: str, users: Mapping[str, str], *, anonymous_pull: bool = False) -> None:
        self.key_file = os.path.join(directory, "token.key")
        self.cert_file = os.path.join(directory, "token.crt")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key_file,
             "-out", self.cert_file, "-days", "2", "-subj", "/CN=pycontainerd test token signer")
        der = _run("openssl", "x509", "-in", self.cert_file, "-outform", "DER")
        self._x5c = base64.b64encode(der).decode()
        self.users = dict(users)
        self.anonymous_pull = anonymous_pull
        #: OAuth refresh tokens (Docker config ``identitytoken``) and the user each stands for.
        self.refresh_tokens: dict[str, str] = {}
        self.issued = 0
        self.requests: list[dict[str, list[str]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = server._answer(self.path, self.headers.get("Authorization"))
                self._send(status, body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                status, body = server._refresh(form)
                self._send(status, body)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="token-server", daemon=True)
        self._thread.start()

    def _user(self, authorization: str | None) -> tuple[bool, str | None]:
        if not authorization:
            return True, None
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False, None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False, None
        return self.users.get(user) == password, user

    def _refresh(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        # The OAuth2 form post: grant_type=refresh_token with an identity token.
        with self._lock:
            self.requests.append(form)
        user = self.refresh_tokens.get(form.get("refresh_token", [""])[0])
        if form.get("grant_type") != ["refresh_token"] or user is None:
            return 401, {"error": "invalid_grant"}
        scopes = " ".join(form.get("scope", [])).split()
        return self._issue(user, {"service": form.get("service", [""]), "scope": scopes})

    def _answer(self, path: str, authorization: str | None) -> tuple[int, dict[str, Any]]:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        with self._lock:
            self.requests.append(query)
        ok, user = self._user(authorization)
        if not ok:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        return self._issue(user, query)

    def _issue(self, user: str | None, query: Mapping[str, list[str]]) -> tuple[int, dict[str, Any]]:
        access = []
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) != 3 or parts[0] != "repository":
                    continue
                wanted = parts[2].split(",")
                if user is not None:
                    actions = wanted
                else:
                    actions = ["pull"] if self.anonymous_pull and "pull" in wanted else []
                access.append({"type": "repository", "name": parts[1], "actions": actions})
        now = int(time.time())
        claims = {"iss": _ISSUER, "sub": user or "", "aud": query.get("service", [""])[0],
                  "exp": now + _TOKEN_LIFETIME, "nbf": now - 10, "iat": now,
                  "jti": os.urandom(8).hex(), "access": access}
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = _run("openssl", "dgst", "-sha256", "-sign", self.key_file, stdin=signing_input.encode())
        token = f"{signing_input}.{_b64url(signature)}"
        with self._lock:
            self.issued += 1
        return 200, {"token": token, "access_token": token, "expires_in": _TOKEN_LIFETIME,
                     "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))}

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()


class PrivateRegistry:
    """A ``docker-registry`` process on 127.0.0.1 with its own storage, config and port.

    Args:
        tls: Serve HTTPS with a certificate from a CA made for this registry.
        auth: ``None``, ``"basic"`` (htpasswd) or ``"token"`` (with a :class:`TokenServer`).
        users: The users and passwords of ``auth``.
        anonymous_pull: With ``auth="token"``: anonymous tokens may pull.
        base_dir: Where to keep everything (default: a new temporary directory, removed
            by :meth:`close`).

    Attributes:
        host: ``127.0.0.1:<port>``, the domain of references to this registry.
        ca_file: The CA certificate to trust (``tls=True``), else ``None``.
        token_server: The token server (``auth="token"``), else ``None``.
    """

    def __init__(self, *, tls: bool = False, auth: str | None = None,
                 users: Mapping[str, str] | None = None, anonymous_pull: bool = False,
                 base_dir: str | None = None) -> None:
        if auth not in (None, "basic", "token"):
            raise ValueError(f"auth must be None, 'basic' or 'token', not {auth!r}")
        self.tls = tls
        self.auth = auth
        self.users = dict(users if users is not None else {"tester": "s3cret"})
        self.anonymous_pull = anonymous_pull
        self._own_dir = base_dir is None
        self.base_dir = base_dir or tempfile.mkdtemp(prefix="pcd-registry-")
        self.port = 0
        self.ca_file: str | None = None
        self.token_server: TokenServer | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The registry's base URL (``http://`` or ``https://``)."""
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def plain_http(self) -> bool:
        """Whether clients must be told to speak plain HTTP."""
        return not self.tls

    def _config(self) -> str:
        storage = os.path.join(self.base_dir, "storage")
        os.makedirs(storage, exist_ok=True)
        lines = [
            "version: 0.1",
            "log:",
            "  level: warn",
            "  accesslog:",
            "    disabled: true",
            "storage:",
            "  filesystem:",
            f"    rootdirectory: {storage}",
            "  delete:",
            "    enabled: true",
            "  maintenance:",
            "    uploadpurging:",
            "      enabled: false",
            "http:",
            f"  addr: 127.0.0.1:{self.port}",
            f"  secret: {os.urandom(16).hex()}",
        ]
        if self.tls:
            certs = make_ca(self.base_dir)
            self.ca_file = certs.ca_cert
            lines += ["  tls:", f"    certificate: {certs.server_cert}", f"    key: {certs.server_key}"]
        if self.auth == "basic":
            htpasswd = os.path.join(self.base_dir, "htpasswd")
            with open(htpasswd, "wb") as f:
                for user, password in self.users.items():
                    f.write(_run("htpasswd", "-nbB", user, password).strip() + b"\n")
            lines += ["auth:", "  htpasswd:", "    realm: pycontainerd-test", f"    path: {htpasswd}"]
        elif self.auth == "token":
            self.token_server = TokenServer(self.base_dir, self.users, anonymous_pull=self.anonymous_pull)
            lines += ["auth:", "  token:", f"    realm: {self.token_server.realm}",
                      f"    service: {_SERVICE}", f"    issuer: {_ISSUER}",
                      f"    rootcertbundle: {self.token_server.cert_file}"]
        path = os.path.join(self.base_dir, "config.yml")
        with open(path, "w") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def start(self) -> PrivateRegistry:
        """Start the registry and wait until it answers ``/v2/``.

        Raises:
            RuntimeError: It did not come up (its log is in the message).
        """
        if shutil.which(REGISTRY_BINARY) is None:
            raise FileNotFoundError(f"{REGISTRY_BINARY} not found (Debian: apt-get install docker-registry)")
        self.port = free_port()
        config = self._config()
        log = open(os.path.join(self.base_dir, "registry.log"), "ab")  # noqa: SIM115 - owned by the process
        try:
            self._proc = subprocess.Popen([REGISTRY_BINARY, "serve", config], stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if self._proc.poll() is not None:
                status = self._proc.returncode
                raise RuntimeError(f"{REGISTRY_BINARY} exited with status {status}: {self.log()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{REGISTRY_BINARY} did not listen in {_START_TIMEOUT:g} s: "
                                       f"{self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        """The registry's log so far (its last 4 KiB)."""
        try:
            with open(os.path.join(self.base_dir, "registry.log"), "rb") as f:
                return f.read()[-4096:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process (its storage stays until :meth:`close`); :meth:`start` brings it back."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        """Start the process again on the same port, with the same storage and config."""
        self.stop()
        config = os.path.join(self.base_dir, "config.yml")
        log = open(os.path.join(self.base_dir, "registry.log"), "ab")  # noqa: SIM115 - owned by the process
        try:
            self._proc = subprocess.Popen([REGISTRY_BINARY, "serve", config], stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return
            time.sleep(0.05)
        raise RuntimeError(f"{REGISTRY_BINARY} did not listen again: {self.log()}")

    def close(self) -> None:
        """Stop the registry and the token server; remove the directory if it was made here."""
        self.stop()
        if self.token_server is not None:
            self.token_server.close()
            self.token_server = None
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> PrivateRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def blob_path(self, repository: str, digest: str) -> str:
        """Where the registry's storage keeps a blob's data (tests corrupt it there)."""
        alg, hexpart = digest.split(":", 1)
        return os.path.join(self.base_dir, "storage", "docker", "registry", "v2", "blobs", alg, hexpart[:2],
                            hexpart, "data")


@dataclass
class Fault:
    """What :class:`FaultProxy` does to the requests matching ``method`` and ``path`` (a regex).

    Attributes:
        method: The HTTP method (``"GET"``), or ``"*"``.
        path: A regular expression searched in the request path.
        cut_after: Close the connection after this many body bytes of the answer.
        status: Answer this status instead of forwarding (with ``headers`` and ``body``).
        headers: Headers of the ``status`` answer.
        body: Body of the ``status`` answer.
        flip_at: Flip the bits of the answer body's byte at this offset.
        stall: Seconds to wait before answering (with ``stall_after``: mid-body instead).
        stall_after: Send this many body bytes of the answer first, then stall (a
            transfer that hangs mid-blob).
        times: How many matching requests it applies to (``-1``: all).
        hits: How many it applied to so far.
    """

    method: str
    path: str
    cut_after: int | None = None
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    flip_at: int | None = None
    stall: float = 0.0
    times: int = 1
    stall_after: int | None = None
    hits: int = 0


class FaultProxy:
    """A plain-HTTP reverse proxy to a registry that injects :class:`Fault` s.

    Args:
        upstream: The registry's ``host:port`` (plain HTTP).

    Attributes:
        host: ``127.0.0.1:<port>``, to use as the registry's domain.
        faults: The rules, first match wins; add to it while running.
        log: ``(method, path, status)`` of every request, and the ``Range`` asked for.
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int, str]] = []
        self._lock = threading.Lock()
        # Stalls end early when the proxy closes, and close() ends every connection and
        # waits for its thread: nothing of a test's proxy outlives it.
        self._closing = threading.Event()
        self._connections: dict[threading.Thread, socket.socket] = {}
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with proxy._lock:
                    proxy._connections[threading.current_thread()] = self.connection

            def finish(self) -> None:
                with proxy._lock:
                    proxy._connections.pop(threading.current_thread(), None)
                super().finish()

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy._serve(self)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.method in ("*", method) and re.search(fault.path, path) \
                        and (fault.times < 0 or fault.hits < fault.times):
                    fault.hits += 1
                    return fault
        return None

    def _serve(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        method, path = handler.command, handler.path
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        fault = self._fault(method, path)
        if fault is not None and fault.stall and fault.stall_after is None \
                and self._closing.wait(fault.stall):
            return
        if fault is not None and fault.status is not None:
            self._record(method, path, fault.status, handler)
            handler.send_response(fault.status)
            for name, value in fault.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(fault.body)))
            handler.end_headers()
            if method != "HEAD":
                handler.wfile.write(fault.body)
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in ("connection",)}
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            self._record(method, path, response.status, handler)
            handler.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("connection", "transfer-encoding"):
                    handler.send_header(name, value)
            data = response.read()
            if "content-length" not in {name.lower() for name, _ in response.getheaders()}:
                handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if method == "HEAD":
                return
            if fault is not None and fault.flip_at is not None and fault.flip_at < len(data):
                data = data[: fault.flip_at] + bytes([data[fault.flip_at] ^ 0xFF]) + data[fault.flip_at + 1 :]
            if fault is not None and fault.stall_after is not None:
                handler.wfile.write(data[: fault.stall_after])
                handler.wfile.flush()
                if self._closing.wait(fault.stall):
                    return
                data = data[fault.stall_after :]
            if fault is not None and fault.cut_after is not None:
                handler.wfile.write(data[: fault.cut_after])
                handler.wfile.flush()
                handler.close_connection = True
                with contextlib.suppress(OSError):
                    handler.connection.shutdown(socket.SHUT_RDWR)
                return
            handler.wfile.write(data)
        finally:
            conn.close()

    def _record(self, method: str, path: str, status: int,
                handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.log.append((method, path, status, handler.headers.get("Range") or ""))

    def close(self) -> None:
        """Stop serving: end stalls and connections, and wait (boundedly) for their threads."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            connections = dict(self._connections)
        for conn in connections.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in connections:
            thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def push_blobs(registry_url: str, repository: str, blobs: Mapping[str, bytes],
               manifests: list[tuple[str, str, bytes]], *, headers: Mapping[str, str] | None = None,
               context: Any = None) -> None:
    """Upload blobs and manifests with plain HTTP calls (no pycontainerd code), for pull tests.

    Args:
        registry_url: ``http://127.0.0.1:<port>``.
        repository: The repository path.
        blobs: Blob bytes by digest.
        manifests: ``(reference, media type, bytes)`` in order (children before indexes).
        headers: Extra headers (``Authorization``).
        context: An ``ssl.SSLContext`` for HTTPS.
    """
    parts = urllib.parse.urlsplit(registry_url)
    def connect() -> http.client.HTTPConnection:
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.netloc, timeout=60, context=context)
        return http.client.HTTPConnection(parts.netloc, timeout=60)
    extra = dict(headers or {})
    for digest, data in blobs.items():
        conn = connect()
        try:
            conn.request("POST", f"/v2/{repository}/blobs/uploads/", headers={**extra, "Content-Length": "0"})
            response = conn.getresponse()
            response.read()
            location = urllib.parse.urlsplit(response.getheader("Location") or "")
            if response.status != 202:
                raise RuntimeError(f"blob {digest}: upload start status {response.status}")
            sep = "&" if location.query else ""
            conn.request("PUT", f"{location.path}?{location.query}{sep}digest={digest}", body=data,
                         headers={**extra, "Content-Type": "application/octet-stream",
                                  "Content-Length": str(len(data))})
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise RuntimeError(f"blob {digest}: status {response.status}")
        finally:
            conn.close()
    for reference, media_type, data in manifests:
        conn = connect()
        try:
            conn.request("PUT", f"/v2/{repository}/manifests/{reference}", body=data,
                         headers={**extra, "Content-Type": media_type, "Content-Length": str(len(data))})
            response = conn.getresponse()
            answer = response.read()
            if response.status != 201:
                raise RuntimeError(f"manifest {reference}: status {response.status}: {answer[:300]!r}")
        finally:
            conn.close()


def digest_of(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


Callback = Callable[[], None]
