"""The pure parts of pycontainerd.registry: references, challenges, credentials, Retry-After."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from pycontainerd.images.reference import InvalidReferenceError, parse
from pycontainerd.registry import credentials
from pycontainerd.registry.auth import parse_challenges
from pycontainerd.registry.credentials import Credentials
from pycontainerd.registry.transport import retry_after

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("ref", "normal", "api_host"), [
    ("alpine", "docker.io/library/alpine:latest", "registry-1.docker.io"),
    ("alpine:3.20", "docker.io/library/alpine:3.20", "registry-1.docker.io"),
    ("user/app", "docker.io/user/app:latest", "registry-1.docker.io"),
    ("docker.io/alpine", "docker.io/library/alpine:latest", "registry-1.docker.io"),
    ("index.docker.io/user/app:1", "docker.io/user/app:1", "registry-1.docker.io"),
    ("localhost/a", "localhost/a:latest", "localhost"),
    ("localhost:5000/a/b/c:v1.2", "localhost:5000/a/b/c:v1.2", "localhost:5000"),
    ("127.0.0.1:5000/x", "127.0.0.1:5000/x:latest", "127.0.0.1:5000"),
    ("[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000"),
    ("quay.io/org/a__b-c.d", "quay.io/org/a__b-c.d:latest", "quay.io"),
    (f"alpine@{DIGEST}", f"docker.io/library/alpine@{DIGEST}", "registry-1.docker.io"),
    (f"r.example/a:t@{DIGEST}", f"r.example/a:t@{DIGEST}", "r.example"),
    ("localhost:5000", "docker.io/library/localhost:5000", "registry-1.docker.io"),
])
def test_normalisation(ref: str, normal: str, api_host: str) -> None:
    parsed = parse(ref)
    assert str(parsed) == normal
    assert parsed.api_host == api_host
    assert parse(normal) == parsed


def test_object_is_the_digest_when_given() -> None:
    assert parse(f"a:t@{DIGEST}").object == DIGEST
    assert parse("a:t").object == "t"
    assert parse("a").with_digest(DIGEST).object == DIGEST


@pytest.mark.parametrize(("ref", "rule"), [
    ("", "at least one component"),
    ("Alpine", "must be lowercase"),
    ("a:b:c", "invalid reference format"),
    ("a/-b", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("a b", "invalid reference format"),
    ("a:" + "t" * 129, "invalid tag format"),
    ("a:-t", "invalid tag format"),
    ("a@sha256:abc", "invalid digest format"),
    ("a@sha256:" + "AB" * 32, "invalid checksum digest"),
    ("a@sha256:" + "ab" * 33, "invalid checksum digest"),
    ("a@md5:" + "ab" * 16, "unsupported digest algorithm"),
    ("ab" * 32, "64-byte hexadecimal"),
    ("a/" * 130 + "b", "not be more than 255"),
    ("-host.com/a", "invalid reference format"),
])
def test_invalid_references_name_the_rule(ref: str, rule: str) -> None:
    with pytest.raises(InvalidReferenceError, match=rule) as info:
        parse(ref)
    assert isinstance(info.value, ValueError)
    assert info.value.reference == ref


def test_challenges() -> None:
    (bearer,) = parse_challenges('Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"')
    assert bearer.scheme == "bearer"
    assert bearer.params == {"realm": "https://auth.example/token", "service": "reg",
                             "scope": "repository:a:pull"}
    both = parse_challenges('Basic realm="r", Bearer realm="x",error="insufficient_scope"')
    assert [(c.scheme, c.params) for c in both] == [
        ("basic", {"realm": "r"}), ("bearer", {"realm": "x", "error": "insufficient_scope"})]
    (quoted,) = parse_challenges(r'Bearer realm="a\"b", service=plain')
    assert quoted.params == {"realm": 'a"b', "service": "plain"}
    assert parse_challenges("") == []


def test_retry_after() -> None:
    assert retry_after("3") == 3.0
    assert retry_after(None) is None
    assert retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0


def test_credentials_never_show_secrets() -> None:
    creds = Credentials("u", "hunter2")
    assert "hunter2" not in repr(creds)
    assert "hunter2" not in str(creds)
    assert "s3cr3t" not in repr(Credentials(identity_token="s3cr3t"))


def _config(path: Path, value: object) -> str:
    path.write_text(json.dumps(value))
    return str(path)


def test_docker_config_auths(tmp_path: Path) -> None:
    token = base64.b64encode(b"me:pw").decode()
    path = _config(tmp_path / "config.json", {"auths": {
        "https://index.docker.io/v1/": {"auth": token},
        "https://reg.example:5000/v2/": {"username": "x", "password": "y"},
        "ident.example": {"identitytoken": "refresh"},
    }})
    assert credentials.lookup("docker.io", path) == Credentials("me", "pw")
    assert credentials.lookup("registry-1.docker.io", path) == Credentials("me", "pw")
    assert credentials.lookup("reg.example:5000", path) == Credentials("x", "y")
    assert credentials.lookup("ident.example", path) == Credentials(identity_token="refresh")
    assert credentials.lookup("other.example", path) is None
    assert credentials.lookup("docker.io", str(tmp_path / "missing.json")) is None


def test_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    helper = tmp_path / "docker-credential-unit"
    helper.write_text('#!/bin/sh\nread s\ncase "$s" in\n'
                      '  reg.example) echo \'{"Username":"h","Secret":"s"}\' ;;\n'
                      '  tok.example) echo \'{"Username":"<token>","Secret":"t"}\' ;;\n'
                      '  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    path = _config(tmp_path / "c.json", {"credsStore": "unit", "credHelpers": {"tok.example": "unit"}})
    assert credentials.lookup("reg.example", path) == Credentials("h", "s")
    assert credentials.lookup("tok.example", path) == Credentials(identity_token="t")
    assert credentials.lookup("none.example", path) is None
    broken = _config(tmp_path / "b.json", {"credsStore": "missing-helper"})
    with pytest.raises(credentials.CredentialHelperError, match="not installed"):
        credentials.lookup("reg.example", broken)


def test_save_and_remove_login(tmp_path: Path) -> None:
    path = str(tmp_path / "d" / "config.json")
    credentials.save_login("docker.io", Credentials("me", "pw"), path)
    credentials.save_login("reg.example", Credentials("a", "b"), path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert credentials.lookup("docker.io", path) == Credentials("me", "pw")
    assert "https://index.docker.io/v1/" in json.loads(Path(path).read_text())["auths"]
    assert credentials.remove_login("docker.io", path)
    assert not credentials.remove_login("docker.io", path)
    assert credentials.lookup("reg.example", path) == Credentials("a", "b")


def test_resolver_forms() -> None:
    assert credentials.resolver(("u", "p"))("any") == Credentials("u", "p")
    fixed = Credentials("x", "y")
    assert credentials.resolver(fixed)("any") is fixed
    assert credentials.resolver(lambda host: None)("any") is None
    with pytest.raises(TypeError):
        credentials.resolver(("only-one",))  # type: ignore[arg-type]
