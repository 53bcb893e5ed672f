"""One registry's ``/v2/`` API for one repository: authorized requests and their errors.

:class:`Remote` builds the URLs (``https://`` unless plain HTTP was asked for; Docker
Hub's API host for ``docker.io``), runs the 401 → authorize → retry-once dance of
:mod:`.auth`, and turns an error answer into the typed error of :mod:`.errors`,
reading the registry's ``{"errors": [{"code": ..., "message": ...}]}`` body (or
reporting that the body is not JSON, as when a proxy answers with an HTML page).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from urllib.parse import urljoin, urlsplit

from pycontainerd._cancel import CancelToken
from pycontainerd.images.reference import Reference
from pycontainerd.registry import credentials
from pycontainerd.registry.auth import Authorizer
from pycontainerd.registry.credentials import AuthSource
from pycontainerd.registry.errors import (
    RegistryAuthError,
    RegistryDeniedError,
    RegistryError,
    RegistryNotFoundError,
    RegistryProtocolError,
    RegistryUnavailableError,
)
from pycontainerd.registry.transport import (
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    RETRY_STATUSES,
    Body,
    Response,
    Transport,
)

__all__ = ["Remote", "error_for", "open_remote"]

_MAX_ERROR_BODY = 64 << 10
_MESSAGE_LIMIT = 300


def error_for(response: Response, what: str) -> RegistryError:
    """The typed error for an error ``response`` (its body is read and the connection released)."""
    try:
        body = response.read(_MAX_ERROR_BODY) if response.method != "HEAD" else b""
    except RegistryError:
        body = b""
    status = response.status
    codes: list[str] = []
    messages: list[str] = []
    kind = (response.header("Content-Type") or "").split(";")[0].strip()
    parsed = True
    if body:
        try:
            document = json.loads(body)
            for entry in document.get("errors") or ():
                codes.append(str(entry.get("code", "")))
                messages.append(str(entry.get("message", ""))[:_MESSAGE_LIMIT])
        except (ValueError, AttributeError, TypeError):
            parsed = False
    pairs = zip(codes, messages, strict=True)
    detail = "; ".join(f"{c}: {m}" if m else c for c, m in pairs) or f"status {status}"
    message = f"{what}: {detail}"
    if status == 404:
        return RegistryNotFoundError(message, status=status, error_codes=tuple(codes))
    if status == 401:
        return RegistryAuthError(message, status=status, error_codes=tuple(codes))
    if status == 403:
        return RegistryDeniedError(message, status=status, error_codes=tuple(codes))
    if status in RETRY_STATUSES:
        return RegistryUnavailableError(f"{message} (after retries)", status=status, error_codes=tuple(codes))
    if not parsed:
        return RegistryProtocolError(
            f"{what}: status {status} with a body that is not the registry's JSON "
            f"({kind or 'no content type'})",
            status=status,
        )
    return RegistryError(message, status=status, error_codes=tuple(codes))


class Remote:
    """A repository on a registry, reached through a transport and an authorizer.

    Args:
        ref: The reference (its domain and path are used).
        transport: The HTTP client.
        authorizer: The authorizer (shared by the remotes of one pull or push).
        plain_http: Speak HTTP instead of HTTPS.
    """

    def __init__(self, ref: Reference, transport: Transport, authorizer: Authorizer, *,
                 plain_http: bool = False) -> None:
        self.ref = ref
        self.host = ref.api_host
        self.transport = transport
        self.authorizer = authorizer
        self.base = f"{'http' if plain_http else 'https'}://{self.host}/v2/"

    def url(self, path: str) -> str:
        """The URL of ``path`` under ``/v2/`` (a Location the registry gave is resolved as is)."""
        return urljoin(self.base, path)

    def for_path(self, path: str) -> Remote:
        """The same registry, another repository (for a cross-repository mount)."""
        ref = Reference(self.ref.domain, path, self.ref.tag, self.ref.digest)
        other = Remote(ref, self.transport, self.authorizer)
        other.base = self.base
        return other

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        ok: Collection[int] = (200,),
        idempotent: bool | None = None,
        redirect: bool = True,
    ) -> Response:
        """Send an authorized request; an answer not in ``ok`` becomes a typed error.

        Args:
            method: The HTTP method.
            path_or_url: A path under ``/v2/`` (``<repo>/manifests/<ref>``) or an absolute
                URL on the registry (an upload's Location).
            scopes: The token scopes the request needs.
            headers: Further headers.
            body: The body (see :class:`~.transport.Transport`).
            ok: The statuses returned rather than raised.
            idempotent: See :meth:`.transport.Transport.request`.
            redirect: Follow redirects.

        Returns:
            The answer, body unread.

        Raises:
            RegistryNotFoundError: 404.
            RegistryAuthError: 401 after authorizing (or no way to authorize).
            RegistryDeniedError: 403.
            RegistryUnavailableError: No connection, or 429/5xx after the retries.
            RegistryProtocolError: An error answer that is not the registry's JSON.
            RegistryError: Any other answer not in ``ok``.
        """
        url = self.url(path_or_url)
        what = f"{method} {urlsplit(url).netloc}{urlsplit(url).path}"
        # Credentials go to the registry's own host only (an upload Location may be storage's).
        own = urlsplit(url).netloc.lower() == self.host.lower()
        sent = self.authorizer.header(self.host, scopes) if own else None
        response = self._send(method, url, headers, body, sent, idempotent, redirect)
        if response.status == 401 and own:
            challenge = response.header("WWW-Authenticate")
            response.read(_MAX_ERROR_BODY)
            self.authorizer.unauthorized(self.host, scopes, challenge, sent, what)
            sent = self.authorizer.header(self.host, scopes)
            response = self._send(method, url, headers, body, sent, idempotent, redirect)
            if response.status == 401:
                # Once only: a wrong password must not become a storm of requests.
                error = error_for(response, what)
                kind = "credentials" if sent and sent.startswith("Basic ") else "token"
                raise RegistryAuthError(f"{what}: the registry refused the {kind} (wrong credentials, or no "
                                        f"access to {' '.join(scopes)})", status=401,
                                        error_codes=error.error_codes)
        if response.status not in ok:
            raise error_for(response, what)
        return response

    def _send(self, method: str, url: str, headers: Mapping[str, str] | None, body: Body, auth: str | None,
              idempotent: bool | None, redirect: bool) -> Response:
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = auth
        return self.transport.request(method, url, headers=sent, body=body, idempotent=idempotent,
                                      redirect=redirect)


def open_remote(
    ref: Reference,
    *,
    auth: AuthSource | None = None,
    plain_http: bool = False,
    ca_file: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = DEFAULT_RETRIES,
    connections: int = 4,
    cancel: CancelToken | None = None,
) -> Remote:
    """A :class:`Remote` for ``ref`` with its own transport and authorizer (close its transport after).

    Args:
        ref: The reference.
        auth: Credentials, ``(user, password)``, a function of the host, or ``None`` for
            the Docker config.
        plain_http: HTTP instead of HTTPS.
        ca_file: CAs trusted besides the system's.
        timeout: Seconds to connect and between reads.
        retries: Retries of a retriable failure.
        connections: Connections kept to the registry.
        cancel: Stops every request of the transport when set (see :class:`.transport.Transport`).

    Raises:
        ValueError: ``ca_file`` is not a readable PEM file.
    """
    transport = Transport(ca_file=ca_file, timeout=timeout, retries=retries, connections=connections,
                          cancel=cancel)
    return Remote(ref, transport, Authorizer(transport, credentials.resolver(auth)), plain_http=plain_http)
