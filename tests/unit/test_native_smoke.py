"""The compiled module imports, carries the package version, and the build script finds every C module."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

import pycontainerd
from pycontainerd import _native

CSRC = pathlib.Path(__file__).resolve().parents[2] / "csrc"


@pytest.fixture(scope="module")
def build_native() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pcd_build_native", CSRC / "build_native.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.pop("pcd_build_native", None)
    spec.loader.exec_module(module)
    return module


def test_native_version_matches_package() -> None:
    assert pycontainerd.__version__ == _native.NATIVE_VERSION
    assert _native.FFI.string(_native.LIB.PCD_VERSION).decode() == pycontainerd.__version__


def test_fs_functions_are_exported() -> None:
    for name in ("pcd_fifo_create", "pcd_fifo_open_path", "pcd_fifo_reopen"):
        assert callable(getattr(_native.LIB, name))
    for name in ("pcd_mkdir_all_new", "pcd_mkdir_chown", "pcd_bundle_userns"):
        assert callable(getattr(_native.LIB, name))
    assert _native.LIB.PCD_BUNDLE_WRONG_OWNER != _native.LIB.PCD_BUNDLE_WRITABLE


def test_check_maps_negative_errno_to_oserror() -> None:
    assert _native.check(3) == 3
    with pytest.raises(FileNotFoundError) as info:
        _native.check(-2, "/missing")
    assert info.value.filename == "/missing"


def test_package_version(build_native: ModuleType) -> None:
    assert build_native.package_version() == pycontainerd.__version__


def test_modules_lists_every_c_module_with_a_cdef(build_native: ModuleType) -> None:
    found = build_native.modules()
    assert {"fifo", "bundle"} <= set(found)
    assert found == sorted(found)
    expected = sorted(p.name.removesuffix(".cdef.h") for p in CSRC.glob("*.cdef.h"))
    assert found == [name for name in expected if (CSRC / f"{name}.c").exists()]
    for name in found:
        assert (CSRC / f"{name}.c").is_file()
        assert (CSRC / f"{name}.h").is_file()


def test_sanitizer_flags_only_when_asked(build_native: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PCD_SANITIZE", raising=False)
    assert build_native.sanitizer_flags() == ([], [])
    monkeypatch.setenv("PCD_SANITIZE", "address,undefined")
    compile_args, link_args = build_native.sanitizer_flags()
    assert "-fsanitize=address,undefined" in compile_args
    # Reports are fatal, and Python's -fwrapv would hide signed overflow from UBSan.
    assert "-fno-sanitize-recover=all" in compile_args
    assert "-fno-wrapv" in compile_args
    assert link_args == ["-fsanitize=address,undefined"]


@pytest.mark.parametrize("value", ["address undefined", "address;true", "-fno-pie", "Address", "address,"])
def test_sanitizer_flags_refuse_anything_but_a_list(
    build_native: ModuleType, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("PCD_SANITIZE", value)
    with pytest.raises(RuntimeError, match="PCD_SANITIZE"):
        build_native.sanitizer_flags()
