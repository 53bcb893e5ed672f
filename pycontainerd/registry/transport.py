"""HTTP for the distribution API: TLS, keep-alive, redirects, bounded retries (on urllib3).

One :class:`Transport` serves one pull or push: a urllib3 pool (keep-alive, one
connection per concurrent transfer) with TLS verified against the system CAs plus an
optional ``ca_file``; plain HTTP is used only for URLs the caller builds with
``http://``, which it does only when asked (``plain_http=True``).

* **Redirects** (301, 302, 303, 307, 308; blob downloads are often redirected to
  storage) are followed up to :data:`MAX_REDIRECTS`; the ``Authorization`` header is
  dropped as soon as a hop leaves the original scheme, host and port, so credentials
  and tokens never reach another server. More hops is a redirect loop:
  :class:`~.errors.RegistryProtocolError`.
* **Retries**: a 429 or 5xx answer, a reset or refused connection, or a timeout is
  retried up to ``retries`` times, waiting ``backoff * 2**n`` seconds (or the answer's
  ``Retry-After``, capped at :data:`MAX_RETRY_AFTER`). Connection failures are retried
  only for requests the caller marks idempotent (a half-sent upload may have been
  taken). A host that does not resolve and a TLS failure are not retried.
* A failure to connect is a :class:`~.errors.RegistryUnavailableError` naming the
  host, never a header.

Why urllib3 (and not httpx or http.client) is told in ``docs/design.md``.
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions

from pycontainerd._cancel import CancelToken
from pycontainerd._version import __version__
from pycontainerd.registry.errors import RegistryError, RegistryProtocolError, RegistryUnavailableError

__all__ = [
    "DEFAULT_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_REDIRECTS",
    "MAX_RETRY_AFTER",
    "RETRY_STATUSES",
    "Body",
    "Response",
    "Transport",
]

#: Seconds to connect, and between two reads of an answer.
DEFAULT_TIMEOUT = 60.0
#: Retries after the first attempt, for retriable failures.
DEFAULT_RETRIES = 4
#: Redirect hops followed before a request is taken for a loop.
MAX_REDIRECTS = 10
#: The longest ``Retry-After`` honoured, in seconds (a longer one is cut to this).
MAX_RETRY_AFTER = 30.0
#: Answers that mean "try again later".
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = f"pycontainerd/{__version__}"

#: A request body: bytes, or a function giving the chunks anew for each attempt.
Body = bytes | Callable[[], Iterable[bytes]] | None

# What a broken or failed connection raises (NameResolutionError and TLS are told apart first).
_CONNECTION_ERRORS = (
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.NewConnectionError,
    urllib3.exceptions.ConnectTimeoutError,
    urllib3.exceptions.ReadTimeoutError,
    ConnectionError,
)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def _where(method: str, url: str) -> str:
    # Host and path only: a query can carry a pre-signed storage credential.
    parts = urlsplit(url)
    return f"{method} {parts.scheme}://{parts.netloc}{parts.path}"


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait per a ``Retry-After`` header (delay-seconds or an HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@dataclass
class Response:
    """An answer whose body has not been read yet.

    Attributes:
        status: The HTTP status.
        headers: The headers (case-insensitive).
        url: The URL that answered (after redirects).
        method: The request's method.
    """

    status: int
    headers: Any
    url: str
    method: str
    _raw: urllib3.BaseHTTPResponse
    _finished: bool = False

    def header(self, name: str) -> str | None:
        """One header's value, or ``None``."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def stream(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks of up to ``chunk_size`` bytes.

        Raises:
            urllib3.exceptions.HTTPError: The connection broke or stalled mid-body (the
                caller decides whether to resume).
        """
        yield from self._raw.stream(chunk_size, decode_content=False)
        self._finished = True

    def read(self, limit: int) -> bytes:
        """The whole body, refusing one longer than ``limit`` bytes.

        Raises:
            RegistryProtocolError: The body is longer than ``limit``.
            RegistryUnavailableError: The connection broke mid-body.
        """
        out = bytearray()
        try:
            for chunk in self._raw.stream(64 << 10, decode_content=False):
                out += chunk
                if len(out) > limit:
                    where = _where(self.method, self.url)
                    raise RegistryProtocolError(f"{where}: answer longer than {limit} bytes",
                                                status=self.status)
            self._finished = True
        except urllib3.exceptions.HTTPError as err:
            raise RegistryUnavailableError(f"{_where(self.method, self.url)}: connection broke: "
                                           f"{type(err).__name__}", status=self.status) from err
        finally:
            self.close()
        return bytes(out)

    def close(self) -> None:
        """Give the connection back (or drop it, when the body was not read to its end)."""
        if self._finished or self.method == "HEAD" or self.status in (204, 304):
            # Nothing left to read, but http.client must see the (empty) rest read before
            # the connection takes another request.
            self._raw.drain_conn()
            self._raw.release_conn()
        else:
            # An unread body: the connection cannot serve another request, drop it.
            self._raw.close()
            self._raw.release_conn()

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Transport:
    """A keep-alive HTTP(S) client with the redirect and retry rules of the module docstring.

    Thread-safe: concurrent transfers each take a connection of the pool.

    Args:
        ca_file: A PEM file of CAs trusted besides the system's.
        timeout: Seconds to connect, and between two reads of an answer.
        retries: Retries after the first attempt, for retriable failures.
        backoff: The first retry's wait in seconds (doubled for each next one).
        connections: Connections kept per host.
        cancel: When set, every open connection is shut down (waking a blocked read at
            once) and every request raises :class:`~pycontainerd._cancel.OperationCancelled`.
    """

    def __init__(
        self,
        *,
        ca_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        backoff: float = 0.2,
        connections: int = 8,
        cancel: CancelToken | None = None,
    ) -> None:
        context = ssl.create_default_context()
        if ca_file is not None:
            try:
                context.load_verify_locations(cafile=ca_file)
            except (OSError, ssl.SSLError) as err:
                raise ValueError(f"ca_file {ca_file!r}: not a readable PEM file of certificates ({err})") \
                    from err
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._pool = urllib3.PoolManager(
            num_pools=8,
            maxsize=connections,
            ssl_context=context,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
        )
        self._cancel = cancel if cancel is not None else CancelToken()
        self._live: weakref.WeakSet[urllib3.connection.HTTPConnection] = weakref.WeakSet()
        self._live_lock = threading.Lock()
        self._track_connections()
        self._unregister = self._cancel.on_set(self._abort)

    def _track_connections(self) -> None:
        # urllib3 keeps no reference to a connection in use, and a read blocked in one
        # only ends at its timeout; remembering each connection lets a cancel shut its
        # socket down, which wakes that read at once.
        transport = self

        class HTTP(urllib3.connection.HTTPConnection):
            def connect(self) -> None:
                super().connect()
                transport._opened(self)

        class HTTPS(urllib3.connection.HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                transport._opened(self)

        class HTTPPool(urllib3.connectionpool.HTTPConnectionPool):
            ConnectionCls = HTTP

        class HTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
            ConnectionCls = HTTPS

        self._pool.pool_classes_by_scheme = {"http": HTTPPool, "https": HTTPSPool}

    def _opened(self, conn: urllib3.connection.HTTPConnection) -> None:
        with self._live_lock:
            self._live.add(conn)
        if self._cancel.is_set():
            _shut(conn)

    def _abort(self) -> None:
        with self._live_lock:
            live = list(self._live)
        for conn in live:
            _shut(conn)

    def close(self) -> None:
        """Close every connection: pooled ones, and any a broken or cancelled transfer still held."""
        self._unregister()
        self._pool.clear()
        with self._live_lock:
            live = list(self._live)
            self._live.clear()
        for conn in live:
            # A response abandoned mid-body never gives its connection back to the pool:
            # close its socket now rather than whenever the garbage collector gets to it.
            conn.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        idempotent: bool | None = None,
        redirect: bool = True,
    ) -> Response:
        """Send a request, following redirects and retrying as the module docstring says.

        Args:
            method: ``GET``, ``HEAD``, ``PUT``, ...
            url: The absolute URL.
            headers: Request headers (an ``Authorization`` one stays with its origin).
            body: Bytes, or a function giving the chunks anew for each attempt (send
                ``Content-Length`` for it, else the body goes chunked).
            idempotent: Whether a request that may have reached the server can be sent
                again (default: for GET, HEAD and PUT).
            redirect: Follow redirects (else a 3xx is returned).

        Returns:
            The answer, body unread: 2xx, 3xx (with ``redirect=False``), 4xx, or a
            retriable status after the last retry.

        Raises:
            RegistryUnavailableError: No connection after the retries (refused, reset,
                timed out), or the host does not resolve.
            RegistryError: TLS verification failed.
            RegistryProtocolError: Too many redirects, or one without a Location.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT")
        sent_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        origin = _origin(url)
        for _hop in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, sent_headers, body, idempotent)
            if not redirect or response.status not in _REDIRECTS:
                return response
            location = response.header("Location")
            response.close()
            if not location:
                raise RegistryProtocolError(f"{_where(method, url)}: redirect without Location",
                                            status=response.status)
            url = urljoin(url, location)
            if _origin(url) != origin:
                sent_headers = {k: v for k, v in sent_headers.items() if k.lower() != "authorization"}
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", None
        raise RegistryProtocolError(f"{_where(method, url)}: more than {MAX_REDIRECTS} redirects (a loop?)")

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: Body,
              idempotent: bool) -> Response:
        attempt = 0
        while True:
            self._cancel.check(_where(method, url))
            data = body() if callable(body) else body
            try:
                raw = self._pool.request(method, url, headers=dict(headers), body=data,
                                         preload_content=False, redirect=False, retries=False)
            except urllib3.exceptions.NameResolutionError as err:
                raise RegistryUnavailableError(f"{_where(method, url)}: host does not resolve") from err
            except urllib3.exceptions.SSLError as err:
                raise RegistryError(f"{_where(method, url)}: TLS failed ({_tls_reason(err)}); "
                                    "pass ca_file= for a private CA, or plain_http=True for an "
                                    "HTTP-only registry") from err
            except _CONNECTION_ERRORS as err:
                self._cancel.check(_where(method, url))
                refused = isinstance(err, urllib3.exceptions.NewConnectionError)
                if attempt < self.retries and (idempotent or refused):
                    self._sleep(attempt, None)
                    attempt += 1
                    continue
                raise RegistryUnavailableError(f"{_where(method, url)}: {_reason(err)} "
                                               f"(after {attempt + 1} attempts)") from err
            response = Response(raw.status, raw.headers, url, method, raw)
            if response.status in RETRY_STATUSES and attempt < self.retries:
                wait = retry_after(response.header("Retry-After"))
                response.close()
                self._sleep(attempt, wait)
                attempt += 1
                continue
            return response

    def _sleep(self, attempt: int, wait: float | None) -> None:
        # A cancel ends the wait: the next attempt then raises OperationCancelled.
        self._cancel.wait(min(MAX_RETRY_AFTER, wait if wait is not None else self.backoff * (2**attempt)))


def _shut(conn: urllib3.connection.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _reason(err: Exception) -> str:
    if isinstance(err, urllib3.exceptions.NewConnectionError):
        return "cannot connect (refused or unreachable)"
    if isinstance(err, urllib3.exceptions.ConnectTimeoutError):
        return "timed out connecting"
    if isinstance(err, urllib3.exceptions.ReadTimeoutError):
        return "timed out waiting for the answer"
    return "connection broke"


def _tls_reason(err: Exception) -> str:
    text = str(err)
    for known in ("CERTIFICATE_VERIFY_FAILED", "WRONG_VERSION_NUMBER", "hostname mismatch"):
        if known in text:
            return {"CERTIFICATE_VERIFY_FAILED": "certificate not trusted",
                    "WRONG_VERSION_NUMBER": "the server does not speak TLS",
                    "hostname mismatch": "certificate is for another host"}[known]
    return "handshake failed"
