"""Registry credentials: given explicitly, or read from the Docker config as ``docker`` stores them.

The Docker config is ``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``:

* ``auths``: per registry, ``auth`` (base64 ``user:password``), or ``username`` and
  ``password``, or ``identitytoken`` (an OAuth refresh token).
* ``credHelpers``: per registry, the name of a helper; ``credsStore``: the helper of
  every registry. A helper is the program ``docker-credential-<name>``: ``get`` reads
  the server URL on stdin and answers ``{"Username": ..., "Secret": ...}`` (a
  ``Username`` of ``<token>`` makes the secret an identity token).

Docker Hub's entries are keyed ``https://index.docker.io/v1/``; other registries by
``host[:port]``, possibly written as a URL. :func:`save_login` and
:func:`remove_login` write the same file (mode 0600, replaced atomically), as
``docker login``/``logout`` do without a helper.

A secret is never part of a ``repr``, an error or a log line.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pycontainerd.images.reference import DOCKER_HUB, DOCKER_HUB_API

__all__ = [
    "DOCKER_HUB_CONFIG_KEY",
    "AuthSource",
    "CredentialHelperError",
    "Credentials",
    "config_path",
    "lookup",
    "remove_login",
    "resolver",
    "save_login",
]

#: The key of Docker Hub's entry in the Docker config (what ``docker login`` writes).
DOCKER_HUB_CONFIG_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({DOCKER_HUB, DOCKER_HUB_API, "index.docker.io"})
# A helper that hangs (waiting on a keyring prompt) must not hang the pull.
_HELPER_TIMEOUT = 30.0
_TOKEN_USERNAME = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A username and password, or an identity (OAuth refresh) token.

    The secrets are left out of ``repr`` and ``str``.

    Attributes:
        username: The user name (``""`` with an identity token).
        password: The password.
        identity_token: An OAuth refresh token (Docker config ``identitytoken``).
    """

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def __repr__(self) -> str:
        secret = "identity_token=<hidden>" if self.identity_token else "password=<hidden>"
        return f"Credentials(username={self.username!r}, {secret})"

    __str__ = __repr__


#: What ``auth=`` accepts: credentials, ``(username, password)``, or a function of the
#: registry host (``host[:port]``) returning credentials or ``None``.
AuthSource = Credentials | tuple[str, str] | Callable[[str], "Credentials | None"]


class CredentialHelperError(RuntimeError):
    """A ``docker-credential-<name>`` helper failed (its name and exit status; never its output)."""


def config_path() -> str:
    """Where the Docker config is: ``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``."""
    base = os.environ.get("DOCKER_CONFIG") or os.path.join(os.path.expanduser("~"), ".docker")
    return os.path.join(base, "config.json")


def _config_key(host: str) -> str:
    return DOCKER_HUB_CONFIG_KEY if host in _HUB_ALIASES else host


def _key_host(key: str) -> str:
    # Keys are "host", "host:port", or URLs such as "https://host/v1/".
    if "://" in key:
        return urlsplit(key).netloc
    return key.split("/", 1)[0]


def _read_config(path: str) -> Mapping[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        # The file's own text may hold secrets: report only where and what kind.
        raise ValueError(f"{path}: not a readable Docker config ({type(err).__name__})") from None
    return value if isinstance(value, Mapping) else {}


def _helper(name: str, server: str) -> Credentials | None:
    program = f"docker-credential-{name}"
    try:
        proc = subprocess.run([program, "get"], input=server.encode(), capture_output=True,
                              timeout=_HELPER_TIMEOUT, check=False)
    except FileNotFoundError:
        raise CredentialHelperError(f"credential helper {program} is not installed") from None
    except subprocess.TimeoutExpired:
        raise CredentialHelperError(f"credential helper {program} did not answer in {_HELPER_TIMEOUT:g} s") \
            from None
    if proc.returncode != 0:
        if b"credentials not found" in proc.stdout + proc.stderr:
            return None
        raise CredentialHelperError(f"credential helper {program} get exited with status {proc.returncode}")
    try:
        answer = json.loads(proc.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError):
        raise CredentialHelperError(f"credential helper {program}: unexpected answer") from None
    if username == _TOKEN_USERNAME:
        return Credentials(identity_token=secret)
    return Credentials(username, secret)


def _from_entry(entry: Any) -> Credentials | None:
    if not isinstance(entry, Mapping):
        return None
    if entry.get("identitytoken"):
        return Credentials(username=str(entry.get("username") or ""),
                           identity_token=str(entry["identitytoken"]))
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=False).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        username, sep, password = decoded.partition(":")
        return Credentials(username, password) if sep else None
    if entry.get("username"):
        return Credentials(str(entry["username"]), str(entry.get("password") or ""))
    return None


def lookup(host: str, path: str | None = None) -> Credentials | None:
    """The credentials the Docker config holds for the registry ``host`` (``host[:port]``).

    Args:
        host: The registry (``docker.io`` and its API host both mean Docker Hub).
        path: The config file; default :func:`config_path`.

    Returns:
        The credentials, or ``None`` when there are none.

    Raises:
        CredentialHelperError: The registry's helper is missing or failed.
        ValueError: The config file is not valid JSON.
    """
    config = _read_config(path or config_path())
    key = _config_key(host)
    helpers = config.get("credHelpers")
    if isinstance(helpers, Mapping):
        for name in (key, host):
            if isinstance(helpers.get(name), str):
                return _helper(helpers[name], key)
    auths = config.get("auths")
    if isinstance(auths, Mapping):
        found = _from_entry(auths.get(key))
        if found is None:
            wanted = DOCKER_HUB if host in _HUB_ALIASES else host
            for entry_key, entry in auths.items():
                entry_host = _key_host(str(entry_key))
                if entry_host == wanted or (wanted == DOCKER_HUB and entry_host in _HUB_ALIASES):
                    found = _from_entry(entry)
                    if found is not None:
                        break
        if found is not None:
            return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return _helper(store, key)
    return None


def resolver(auth: AuthSource | None, config: str | None = None) -> Callable[[str], Credentials | None]:
    """The function of a registry host that gives its credentials, from ``auth=`` or the Docker config.

    Args:
        auth: Explicit credentials (for every host), a function of the host, or ``None``
            for the Docker config.
        config: The Docker config file (default :func:`config_path`).
    """
    if isinstance(auth, Credentials):
        return lambda _host: auth
    if isinstance(auth, tuple):
        if len(auth) != 2 or not all(isinstance(part, str) for part in auth):
            raise TypeError("auth=(username, password) needs two strings")
        given = Credentials(auth[0], auth[1])
        return lambda _host: given
    if auth is not None:
        return auth
    return lambda host: lookup(host, config)


def _write_config(path: str, config: Mapping[str, Any]) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".config.json.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)
            json.dump(config, f, indent="\t")
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def save_login(host: str, credentials: Credentials, path: str | None = None) -> str:
    """Store ``credentials`` for ``host`` in the Docker config's ``auths`` (mode 0600); return the file.

    Args:
        host: The registry (``docker.io`` is written under Docker Hub's key).
        credentials: Username and password (or an identity token).
        path: The config file; default :func:`config_path`.
    """
    path = path or config_path()
    config = dict(_read_config(path))
    auths = dict(config.get("auths") or {})
    if credentials.identity_token:
        entry = {"auth": base64.b64encode(f"{credentials.username}:".encode()).decode(),
                 "identitytoken": credentials.identity_token}
    else:
        token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
        entry = {"auth": token}
    auths[_config_key(host)] = entry
    config["auths"] = auths
    _write_config(path, config)
    return path


def remove_login(host: str, path: str | None = None) -> bool:
    """Remove ``host``'s entry from the Docker config's ``auths``; whether there was one."""
    path = path or config_path()
    config = dict(_read_config(path))
    auths = dict(config.get("auths") or {})
    if auths.pop(_config_key(host), None) is None:
        return False
    config["auths"] = auths
    _write_config(path, config)
    return True
