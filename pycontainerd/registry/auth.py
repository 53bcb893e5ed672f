"""Authorizing requests to a registry: anonymous, Basic, and the Bearer token flow.

As containerd's ``remotes/docker`` authorizer does it:

* A request first goes out with what is known for its host: nothing, Basic
  credentials once the host asked for Basic, or a Bearer token cached for the host
  and the request's scopes.
* A 401 carries ``WWW-Authenticate``. For ``Bearer realm=...,service=...,scope=...``
  a token is fetched from the realm for the service and the scopes (the request's
  and the challenge's): ``GET realm?service=...&scope=...``, with Basic credentials
  if there are any, or, with an identity token, the OAuth ``POST`` of a refresh
  token. Tokens are cached per host and scope set until ``expires_in`` (60 s when
  the server does not say). For ``Basic``, the credentials are sent.
* The request is then sent again, once. A second 401 is final (a wrong password
  causes no retry storm): :class:`~.errors.RegistryAuthError`.

Credentials come from a function of the host (:func:`.credentials.resolver`). No
token, password or header value appears in an error message.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

from pycontainerd.registry.credentials import Credentials
from pycontainerd.registry.errors import RegistryAuthError, RegistryDeniedError, RegistryProtocolError
from pycontainerd.registry.transport import Transport

__all__ = ["Authorizer", "Challenge", "parse_challenges", "pull_scope", "push_scope"]

#: How long a token without ``expires_in`` is used (the token spec's default).
DEFAULT_TOKEN_LIFETIME = 60.0
# Renew a token this long before it expires, so it does not expire in flight.
_EXPIRY_MARGIN = 5.0
_MAX_TOKEN_ANSWER = 1 << 20
_CLIENT_ID = "pycontainerd"
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def pull_scope(path: str) -> str:
    """The token scope that allows pulling from repository ``path``."""
    return f"repository:{path}:pull"


def push_scope(path: str) -> str:
    """The token scope that allows pulling from and pushing to repository ``path``."""
    return f"repository:{path}:pull,push"


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge.

    Attributes:
        scheme: ``bearer`` or ``basic`` (lowercase).
        params: Its parameters (``realm``, ``service``, ``scope``, ``error``).
    """

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of a ``WWW-Authenticate`` header (several may share one header)."""
    challenges: list[Challenge] = []
    pos = 0
    header = header or ""
    while pos < len(header):
        match = re.compile(r"\s*,?\s*([A-Za-z][A-Za-z0-9_-]*)(?:\s+|$)").match(header, pos)
        if match is None:
            break
        scheme = match.group(1).lower()
        pos = match.end()
        params: dict[str, str] = {}
        while pos < len(header):
            param = _PARAM.match(header, pos)
            # A bare word not followed by "=" starts the next challenge.
            if param is None:
                break
            value = param.group(2) if param.group(2) is not None else param.group(3)
            params[param.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
            pos = param.end()
        challenges.append(Challenge(scheme, params))
    return challenges


@dataclass
class _Token:
    value: str
    expires: float


class Authorizer:
    """Authorization headers per host and scope, with the token cache; thread-safe.

    Args:
        transport: The HTTP client (for the token server).
        credentials: The credentials of a registry host, or ``None``.
    """

    def __init__(self, transport: Transport, credentials: Callable[[str], Credentials | None]) -> None:
        self._transport = transport
        self._credentials = credentials
        self._lock = threading.Lock()
        self._fetch_lock = threading.Lock()
        self._bearer: dict[str, dict[str, str]] = {}
        self._basic: set[str] = set()
        self._tokens: dict[tuple[str, frozenset[str]], _Token] = {}
        self._creds: dict[str, Credentials | None] = {}

    def _creds_for(self, host: str) -> Credentials | None:
        with self._lock:
            if host not in self._creds:
                self._creds[host] = self._credentials(host)
            return self._creds[host]

    def header(self, host: str, scopes: Sequence[str]) -> str | None:
        """The ``Authorization`` value to send to ``host`` for ``scopes``, or ``None`` (anonymous).

        Raises:
            RegistryAuthError: The token server refused the credentials.
        """
        with self._lock:
            bearer = self._bearer.get(host)
            basic = host in self._basic
        if bearer is not None:
            return "Bearer " + self._token(host, bearer, scopes)
        if basic:
            creds = self._creds_for(host)
            if creds is not None and not creds.identity_token:
                raw = f"{creds.username}:{creds.password}".encode()
                return "Basic " + base64.b64encode(raw).decode()
        return None

    def unauthorized(self, host: str, scopes: Sequence[str], www_authenticate: str | None, sent: str | None,
                     what: str) -> None:
        """Learn from a 401 how ``host`` wants to be authorized; drop the token it refused.

        Args:
            host: The registry host.
            scopes: The request's scopes.
            www_authenticate: The answer's ``WWW-Authenticate``.
            sent: The ``Authorization`` that was refused, if any.
            what: The request (``GET host/path``) for messages.

        Raises:
            RegistryAuthError: Retrying cannot help: no usable challenge, credentials
                needed and none known, or Basic credentials refused.
        """
        challenges = parse_challenges(www_authenticate or "")
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None and bearer.params.get("realm"):
            if bearer.params.get("error") == "insufficient_scope" and sent and sent.startswith("Bearer "):
                raise RegistryDeniedError(f"{what}: the token does not allow {', '.join(scopes)}", status=401)
            with self._lock:
                self._bearer[host] = dict(bearer.params)
                # The cached token was refused: the next header() fetches a fresh one.
                self._tokens.pop((host, _scope_key(scopes, bearer.params)), None)
            return
        if basic is not None:
            creds = self._creds_for(host)
            if creds is None or creds.identity_token:
                raise RegistryAuthError(f"{what}: the registry wants a username and password (none given)",
                                        status=401)
            if sent is not None and sent.startswith("Basic "):
                raise RegistryAuthError(f"{what}: the registry refused the username and password", status=401)
            with self._lock:
                self._basic.add(host)
            return
        raise RegistryAuthError(f"{what}: unauthorized, and no Bearer or Basic challenge to answer",
                                status=401)

    def _token(self, host: str, params: dict[str, str], scopes: Sequence[str]) -> str:
        key = (host, _scope_key(scopes, params))
        with self._fetch_lock:  # one fetch per key at a time: concurrent layers share it
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None and cached.expires > time.monotonic():
                return cached.value
            token = self._fetch_token(host, params, sorted(key[1]))
            with self._lock:
                self._tokens[key] = token
            return token.value

    def _fetch_token(self, host: str, params: dict[str, str], scopes: list[str]) -> _Token:
        realm = params["realm"]
        if urlsplit(realm).scheme not in ("http", "https"):
            raise RegistryProtocolError(f"{host}: token realm is not an http(s) URL")
        creds = self._creds_for(host)
        service = params.get("service", "")
        started = time.monotonic()
        if creds is not None and creds.identity_token:
            # OAuth2: the identity token is a refresh token.
            form = {"grant_type": "refresh_token", "refresh_token": creds.identity_token, "service": service,
                    "client_id": _CLIENT_ID, "scope": " ".join(scopes)}
            response = self._transport.request(
                "POST", realm, body=urlencode(form).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"}, idempotent=True)
        else:
            query = [("service", service)] if service else []
            query += [("scope", scope) for scope in scopes]
            headers = {}
            if creds is not None:
                query += [("account", creds.username), ("client_id", _CLIENT_ID)]
                raw = f"{creds.username}:{creds.password}".encode()
                headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
            sep = "&" if "?" in realm else "?"
            response = self._transport.request("GET", realm + sep + urlencode(query), headers=headers)
        where = f"token server {urlsplit(realm).netloc}"
        body = response.read(_MAX_TOKEN_ANSWER)
        if response.status in (401, 403):
            raise RegistryAuthError(f"{where} refused the credentials for {host} (status {response.status})",
                                    status=response.status)
        if response.status != 200:
            raise RegistryAuthError(f"{where} answered status {response.status}", status=response.status)
        try:
            answer = json.loads(body)
            value = answer.get("token") or answer.get("access_token")
            lifetime = float(answer.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            raise RegistryProtocolError(f"{where}: the answer is not a token document",
                                        status=response.status) from None
        if not isinstance(value, str) or not value:
            raise RegistryProtocolError(f"{where}: the answer has no token", status=response.status)
        return _Token(value, started + max(0.0, lifetime - _EXPIRY_MARGIN))


def _scope_key(scopes: Sequence[str], params: dict[str, str]) -> frozenset[str]:
    extra = params.get("scope", "")
    return frozenset([*scopes, *(s for s in extra.split(" ") if s)])
