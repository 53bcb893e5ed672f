"""TLS, Basic and Bearer-token registries on loopback: the real registry, real credentials."""

from __future__ import annotations

import base64
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _registry import NOTHING, leftovers, upload

import pycontainerd
from pycontainerd import testing_images as ti
from pycontainerd import testing_registry as tr
from pycontainerd.registry import Credentials, RegistryAuthError, RegistryError

USER, PASSWORD = "tester", "s3cret-Pa55"


@pytest.fixture(scope="module")
def image() -> ti.BuiltImage:
    return ti.build_image([ti.busybox_layer(), ti.Layer([ti.file("msg", b"secure\n")])], cmd=["cat", "/msg"])


@pytest.fixture(scope="module")
def tls_registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry(tls=True) as r:
        yield r


@pytest.fixture(scope="module")
def basic_registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry(tls=True, auth="basic", users={USER: PASSWORD}) as r:
        yield r


@pytest.fixture(scope="module")
def token_registry() -> Iterator[tr.PrivateRegistry]:
    with tr.PrivateRegistry(auth="token", users={USER: PASSWORD}) as r:
        yield r


def _import(client: Any, tmp_path: Path, built: ti.BuiltImage) -> Any:
    (imported,) = client.import_archive(ti.write_oci_archive(tmp_path / "i.tar", {"docker.io/t/x:1": built}),
                                        unpack=False)
    return imported


def _forget(client: Any) -> None:
    for record in client.api.images.list():
        client.delete_image(record.name, sync=True)


def test_tls_needs_the_ca(client: Any, tls_registry: tr.PrivateRegistry, image: ti.BuiltImage) -> None:
    upload(tls_registry, "t/tls", "1", image)
    ref = f"{tls_registry.host}/t/tls:1"
    with pytest.raises(RegistryError, match="certificate not trusted") as info:
        client.pull(ref)
    assert "ca_file" in str(info.value)
    assert leftovers(client) == NOTHING
    pulled = client.pull(ref, ca_file=tls_registry.ca_file)
    assert pulled.target.digest == image.manifest["digest"]
    result = pycontainerd.run([], image=ref, client=client, capture_output=True)
    assert result.stdout == b"secure\n"


def test_basic_auth_push_and_pull(client: Any, basic_registry: tr.PrivateRegistry, image: ti.BuiltImage,
                                  tmp_path: Path) -> None:
    ca = basic_registry.ca_file
    ref = f"{basic_registry.host}/t/basic:1"
    local = _import(client, tmp_path, image)
    with pytest.raises(RegistryAuthError, match="wants a username and password"):
        client.push(local, ref, ca_file=ca, auth=lambda host: None)
    with pytest.raises(RegistryAuthError, match="refused") as info:
        client.push(local, ref, ca_file=ca, auth=(USER, "wrong-password"))
    assert "wrong-password" not in str(info.value)
    client.push(local, ref, ca_file=ca, auth=(USER, PASSWORD))
    _forget(client)
    pulled = client.pull(ref, ca_file=ca, auth=Credentials(USER, PASSWORD))
    assert pulled.target.digest == image.manifest["digest"]
    assert PASSWORD not in repr(Credentials(USER, PASSWORD))


def test_credentials_from_docker_config(client: Any, basic_registry: tr.PrivateRegistry, image: ti.BuiltImage,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    upload(basic_registry, "t/config", "1", image,
           headers={"Authorization": "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()})
    ref = f"{basic_registry.host}/t/config:1"
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config_dir / "config.json").write_text(json.dumps({"auths": {basic_registry.host: {"auth": token}}}))
    assert client.pull(ref, ca_file=basic_registry.ca_file).target.digest == image.manifest["digest"]
    _forget(client)
    # A credential helper named by credHelpers: docker-credential-<name> get.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-pcdtest"
    helper.write_text("#!/bin/sh\nread server\n"
                      f"printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' "
                      '"$server"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {basic_registry.host: "pcdtest"}}))
    assert client.pull(ref, ca_file=basic_registry.ca_file).target.digest == image.manifest["digest"]


def test_token_auth(client: Any, token_registry: tr.PrivateRegistry, image: ti.BuiltImage,
                    tmp_path: Path) -> None:
    server = token_registry.token_server
    assert server is not None
    ref = f"{token_registry.host}/t/token:1"
    local = _import(client, tmp_path, image)
    with pytest.raises(RegistryAuthError, match="refused the credentials"):
        client.push(local, ref, plain_http=True, auth=(USER, "nope"))
    client.push(local, ref, plain_http=True, auth=(USER, PASSWORD))
    _forget(client)
    before = server.issued
    pulled = client.pull(ref, plain_http=True, auth=(USER, PASSWORD))
    assert pulled.target.digest == image.manifest["digest"]
    # One token for the repository's pull scope, shared by the manifest and every blob.
    assert server.issued - before == 1
    scopes = server.requests[-1]["scope"]
    assert scopes == ["repository:t/token:pull"]
    # Anonymous: the token server grants nothing, so the registry refuses.
    _forget(client)
    with pytest.raises(RegistryAuthError):
        client.pull(ref, plain_http=True, auth=lambda host: None)
    assert leftovers(client) == NOTHING


def test_token_refreshed_once_on_401(client: Any, token_registry: tr.PrivateRegistry,
                                     image: ti.BuiltImage, tmp_path: Path) -> None:
    server = token_registry.token_server
    assert server is not None
    with tr.FaultProxy(token_registry.host) as proxy:
        ref = f"{proxy.host}/t/refresh:1"
        # A layer GET is refused once as if the token had expired: one new token, then success.
        layer = image.layers[0]["digest"]
        realm = f'Bearer realm="{server.realm}",service="pycontainerd-test-registry"'
        challenge = {"WWW-Authenticate": realm}
        proxy.faults.append(tr.Fault("GET", f"/blobs/{layer}", status=401, headers=challenge))
        client.push(_import(client, tmp_path, image), ref, plain_http=True, auth=(USER, PASSWORD))
        _forget(client)
        before = server.issued
        client.pull(ref, plain_http=True, auth=(USER, PASSWORD))
        assert proxy.faults[0].hits == 1
        assert server.issued - before == 2
        # A registry that keeps refusing is not retried forever: one refresh, then the error.
        _forget(client)
        proxy.faults.append(tr.Fault("GET", "/manifests/", status=401, headers={"WWW-Authenticate": realm},
                                     times=-1))
        before = server.issued
        with pytest.raises(RegistryAuthError):
            client.pull(ref, plain_http=True, auth=(USER, PASSWORD))
        assert server.issued - before <= 2
        assert proxy.faults[1].hits == 2



def test_identity_token_from_docker_config(client: Any, token_registry: tr.PrivateRegistry,
                                           image: ti.BuiltImage, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    server = token_registry.token_server
    assert server is not None
    server.refresh_tokens["refresh-me"] = USER
    ref = f"{token_registry.host}/t/ident:1"
    client.push(_import(client, tmp_path, image), ref, plain_http=True, auth=(USER, PASSWORD))
    _forget(client)
    config = tmp_path / "docker"
    config.mkdir()
    entry = {token_registry.host: {"identitytoken": "refresh-me"}}
    (config / "config.json").write_text(json.dumps({"auths": entry}))
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    pulled = client.pull(ref, plain_http=True)
    assert pulled.target.digest == image.manifest["digest"]
    assert server.requests[-1]["grant_type"] == ["refresh_token"]


def test_redirect_to_storage_drops_authorization(client: Any, token_registry: tr.PrivateRegistry,
                                                 image: ti.BuiltImage, tmp_path: Path) -> None:
    import http.server
    import threading

    seen: list[str | None] = []
    layer = image.layers[0]

    class Storage(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            data = image.blobs[layer["digest"]]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    storage = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage)
    thread = threading.Thread(target=storage.serve_forever, daemon=True)
    thread.start()
    try:
        with tr.FaultProxy(token_registry.host) as proxy:
            ref = f"{proxy.host}/t/redirect:1"
            client.push(_import(client, tmp_path, image), ref, plain_http=True, auth=(USER, PASSWORD))
            _forget(client)
            where = f"http://127.0.0.1:{storage.server_address[1]}/signed/{layer['digest']}?X-Sig=abc"
            proxy.faults.append(tr.Fault("GET", f"/blobs/{layer['digest']}", status=307,
                                         headers={"Location": where}))
            pulled = client.pull(ref, plain_http=True, auth=(USER, PASSWORD))
            assert pulled.target.digest == image.manifest["digest"]
            assert proxy.faults[0].hits == 1
    finally:
        storage.shutdown()
        storage.server_close()
    assert seen == [None]
