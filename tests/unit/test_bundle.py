"""Bundle directories against the real kernel: the root and userns walks, refusals, rollback, umask.

Trees live under a fresh 0755 directory in /tmp, not pytest's tmp_path:
/tmp/pytest-of-root is 0700, so a userns walk there would (correctly)
create /tmp/pytest-of-root.<uid>.<gid>.
"""

from __future__ import annotations

import errno
import glob
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator

import pytest

from pycontainerd.bundle import mkdir_all_and_chown_new, mkdir_and_chown, prepare_bundle_dir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chown to other ids needs root")

UID, GID = 100000, 100001
SFX = f".{UID}.{GID}"


@pytest.fixture
def tree() -> Iterator[str]:
    base = tempfile.mkdtemp(dir="/tmp", prefix="pcd-bundle-")
    os.chmod(base, 0o755)
    yield base
    for path in [base, *glob.glob(glob.escape(base) + ".*")]:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def mkdir(path: str, mode: int, uid: int = 0, gid: int = 0) -> str:
    os.mkdir(path)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def owner_mode(path: str) -> tuple[int, int, int]:
    st = os.lstat(path)
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def snapshot(path: str) -> list[tuple[str, int, int, int]]:
    """Owner, group and mode of ``path`` and everything under it (never following links)."""
    out = [(path, *owner_mode(path))]
    for root, dirs, files in os.walk(path):
        out += [(os.path.join(root, n), *owner_mode(os.path.join(root, n))) for n in sorted(dirs + files)]
    return out


# -- root (uid = gid = 0) ------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o077, 0o777, 0])
def test_root_creates_0755_and_leaves_existing_alone(tree: str, umask: None, mask: int) -> None:
    existing = mkdir(f"{tree}/a", 0o711, 1234, 1234)
    os.umask(mask)
    assert prepare_bundle_dir(f"{tree}/a/b/c", 0, 0) == f"{tree}/a/b/c"
    assert owner_mode(existing) == (1234, 1234, 0o711)
    assert owner_mode(f"{tree}/a/b") == (0, 0, 0o755)
    assert owner_mode(f"{tree}/a/b/c") == (0, 0, 0o755)


def test_root_existing_target_untouched(tree: str) -> None:
    target = mkdir(f"{tree}/t", 0o700, 4321, 4321)
    assert prepare_bundle_dir(target, 0, 0) == target
    assert owner_mode(target) == (4321, 4321, 0o700)


def test_mkdir_all_chowns_only_created(tree: str, umask: None) -> None:
    os.umask(0o077)
    mkdir(f"{tree}/a", 0o755)
    mkdir_all_and_chown_new(f"{tree}/a/b/c", 0o750, 1234, 5678)
    assert owner_mode(f"{tree}/a") == (0, 0, 0o755)
    assert owner_mode(f"{tree}/a/b") == (1234, 5678, 0o750)
    assert owner_mode(f"{tree}/a/b/c") == (1234, 5678, 0o750)


def test_path_is_normalized_once(tree: str) -> None:
    assert prepare_bundle_dir(f"{tree}//a/./b/", 0, 0) == f"{tree}/a/b"
    assert os.path.isdir(f"{tree}/a/b")


# -- userns ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o077, 0o777, 0])
def test_userns_suffixes_from_first_untraversable(tree: str, umask: None, mask: int) -> None:
    mkdir(f"{tree}/a", 0o755)
    private = mkdir(f"{tree}/a/b", 0o700)
    mkdir(f"{tree}/a/b/c", 0o755)  # exists un-suffixed, but deeper components are suffixed anyway
    os.umask(mask)
    got = prepare_bundle_dir(f"{tree}/a/b/c/bundle", UID, GID)
    assert got == f"{tree}/a/b{SFX}/c{SFX}/bundle{SFX}"
    for path in (f"{tree}/a/b{SFX}", f"{tree}/a/b{SFX}/c{SFX}", got):
        assert owner_mode(path) == (UID, GID, 0o700)
    assert owner_mode(private) == (0, 0, 0o700)
    assert os.listdir(f"{tree}/a/b") == ["c"]
    assert owner_mode(f"{tree}/a") == (0, 0, 0o755)


def test_userns_traversable_path_is_used_as_is(tree: str) -> None:
    mkdir(f"{tree}/a", 0o751)
    mkdir(f"{tree}/a/b", 0o701)
    assert prepare_bundle_dir(f"{tree}/a/b", UID, GID) == f"{tree}/a/b"
    assert owner_mode(f"{tree}/a/b") == (0, 0, 0o701)
    assert sorted(os.listdir(tree)) == ["a"]


def test_userns_missing_components_are_suffixed(tree: str) -> None:
    got = prepare_bundle_dir(f"{tree}/x/y", UID, GID)
    assert got == f"{tree}/x{SFX}/y{SFX}"
    assert owner_mode(f"{tree}/x{SFX}") == (UID, GID, 0o700)
    assert owner_mode(got) == (UID, GID, 0o700)
    assert not os.path.lexists(f"{tree}/x")


@pytest.mark.parametrize("mode", [0o700, 0o755, 0o750])
def test_existing_suffixed_dir_accepted(tree: str, mode: int) -> None:
    mkdir(f"{tree}/b", 0o700)
    suffixed = mkdir(f"{tree}/b{SFX}", mode, UID, GID)
    got = prepare_bundle_dir(f"{tree}/b/c", UID, GID)
    assert got == f"{suffixed}/c{SFX}"
    assert owner_mode(suffixed) == (UID, GID, mode)  # verified, never re-chmodded
    assert owner_mode(got) == (UID, GID, 0o700)


@pytest.mark.parametrize(("uid", "gid"), [(0, 0), (UID, 0), (0, GID), (UID + 1, GID)])
def test_existing_suffixed_dir_with_wrong_owner_refused(tree: str, uid: int, gid: int) -> None:
    mkdir(f"{tree}/b", 0o700)
    suffixed = mkdir(f"{tree}/b{SFX}", 0o700, uid, gid)
    with pytest.raises(PermissionError, match="not owned") as info:
        prepare_bundle_dir(f"{tree}/b/c", UID, GID)
    assert info.value.filename == suffixed
    assert owner_mode(suffixed) == (uid, gid, 0o700)
    assert os.listdir(suffixed) == []


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o720, 0o702, 0o1777])
def test_existing_suffixed_dir_writable_by_others_refused(tree: str, mode: int) -> None:
    mkdir(f"{tree}/b", 0o700)
    suffixed = mkdir(f"{tree}/b{SFX}", mode, UID, GID)
    with pytest.raises(PermissionError, match="can write") as info:
        prepare_bundle_dir(f"{tree}/b/c", UID, GID)
    assert info.value.filename == suffixed
    assert owner_mode(suffixed) == (UID, GID, mode)
    assert os.listdir(suffixed) == []


# -- symlinks and non-directories ------------------------------------------------------------------


@pytest.fixture
def target(tree: str) -> str:
    """A directory an attacker would like chowned: 0700 root with content."""
    path = mkdir(f"{tree}/target", 0o700)
    with open(f"{path}/secret", "w") as f:
        f.write("secret")
    os.chmod(f"{path}/secret", 0o600)
    return path


@pytest.mark.parametrize(("uid", "gid"), [(0, 0), (UID, GID)])
def test_symlink_component_refused(tree: str, target: str, uid: int, gid: int) -> None:
    before = snapshot(target)
    os.symlink(target, f"{tree}/link")
    with pytest.raises(OSError, match="symbolic links") as info:
        prepare_bundle_dir(f"{tree}/link/bundle", uid, gid)
    assert info.value.errno == errno.ELOOP
    assert info.value.filename == f"{tree}/link"
    assert snapshot(target) == before
    assert sorted(os.listdir(tree)) == ["link", "target"]


@pytest.mark.parametrize("link_to_owned", [False, True])
def test_symlink_at_suffixed_name_refused(tree: str, target: str, link_to_owned: bool) -> None:
    if link_to_owned:
        os.chown(target, UID, GID)  # even a link to a correctly owned dir is refused
    before = snapshot(target)
    mkdir(f"{tree}/b", 0o700)
    os.symlink(target, f"{tree}/b{SFX}")
    with pytest.raises(OSError, match="symbolic links") as info:
        prepare_bundle_dir(f"{tree}/b/c", UID, GID)
    assert info.value.errno == errno.ELOOP
    assert info.value.filename == f"{tree}/b{SFX}"
    assert snapshot(target) == before
    assert os.listdir(target) == ["secret"]


def test_symlink_below_suffixed_dir_refused(tree: str, target: str) -> None:
    before = snapshot(target)
    mkdir(f"{tree}/b", 0o700)
    suffixed = mkdir(f"{tree}/b{SFX}", 0o700, UID, GID)
    os.symlink(target, f"{suffixed}/c{SFX}")
    with pytest.raises(OSError, match="symbolic links") as info:
        prepare_bundle_dir(f"{tree}/b/c/d", UID, GID)
    assert info.value.filename == f"{suffixed}/c{SFX}"
    assert snapshot(target) == before


@pytest.mark.parametrize(("uid", "gid"), [(0, 0), (UID, GID)])
def test_regular_file_component(tree: str, uid: int, gid: int) -> None:
    with open(f"{tree}/f", "w") as f:
        f.write("data")
    with pytest.raises(NotADirectoryError) as info:
        prepare_bundle_dir(f"{tree}/f/x", uid, gid)
    assert info.value.filename == f"{tree}/f"
    assert sorted(os.listdir(tree)) == ["f"]


def test_regular_file_target_root(tree: str) -> None:
    with open(f"{tree}/f", "w") as f:
        f.write("data")
    with pytest.raises(NotADirectoryError) as info:
        prepare_bundle_dir(f"{tree}/f", 0, 0)
    assert info.value.filename == f"{tree}/f"


# -- rollback ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("uid", "gid", "made"), [(0, 0, "n1/n2"), (UID, GID, f"n1{SFX}/n2{SFX}")])
def test_failure_removes_created_dirs(tree: str, uid: int, gid: int, made: str) -> None:
    too_long = "x" * 250  # fine for root (<= 255), too long once suffixed; 256 fails for both
    with pytest.raises(OSError, match="File name too long") as info:
        prepare_bundle_dir(f"{tree}/n1/n2/{too_long}{'x' * 6}", uid, gid)
    assert info.value.errno == errno.ENAMETOOLONG
    assert info.value.filename == f"{tree}/{made}/{too_long}xxxxxx" + ("" if uid == 0 else SFX)
    assert os.listdir(tree) == []


def test_failure_keeps_preexisting_dirs(tree: str) -> None:
    mkdir(f"{tree}/b", 0o700)
    suffixed = mkdir(f"{tree}/b{SFX}", 0o700, UID, GID)
    mkdir(f"{suffixed}/c{SFX}", 0o777, UID, GID)  # group/other-writable: refused
    with pytest.raises(PermissionError):
        prepare_bundle_dir(f"{tree}/b/c/d", UID, GID)
    assert os.listdir(suffixed) == [f"c{SFX}"]
    assert os.listdir(f"{suffixed}/c{SFX}") == []


# -- mkdir_and_chown ---------------------------------------------------------------------------------


def test_mkdir_and_chown_creates_exact(tree: str, umask: None) -> None:
    os.umask(0o777)
    mkdir_and_chown(f"{tree}/d", 0o710, UID, GID)
    assert owner_mode(f"{tree}/d") == (UID, GID, 0o710)


def test_mkdir_and_chown_reowns_existing(tree: str) -> None:
    mkdir(f"{tree}/d", 0o777)
    mkdir_and_chown(f"{tree}/d", 0o700, UID, GID)  # idtools: no EEXIST, re-own
    assert owner_mode(f"{tree}/d") == (UID, GID, 0o700)


def test_mkdir_and_chown_missing_parent(tree: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        mkdir_and_chown(f"{tree}/p/q/d", 0o700, UID, GID)
    assert info.value.filename == f"{tree}/p"
    assert os.listdir(tree) == []


def test_mkdir_and_chown_refuses_symlink(tree: str, target: str) -> None:
    before = snapshot(target)
    os.symlink(target, f"{tree}/d")
    with pytest.raises(OSError, match="symbolic links") as info:
        mkdir_and_chown(f"{tree}/d", 0o700, UID, GID)
    assert info.value.filename == f"{tree}/d"
    assert snapshot(target) == before


# -- argument validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "uid", "gid", "match"),
    [
        ("relative/x", 0, 0, "absolute"),
        ("", 0, 0, "absolute"),
        ("/tmp/../etc", 0, 0, r"'\.\.'"),
        ("/tmp/a\0b", 0, 0, "NUL"),
        ("/" + "a/" * 2048, 0, 0, "PATH_MAX"),
        ("/tmp/x", 2**32 - 1, 0, "uid"),
        ("/tmp/x", 0, -1, "gid"),
    ],
)
def test_invalid_arguments(path: str, uid: int, gid: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        prepare_bundle_dir(path, uid, gid)


def test_invalid_argument_types() -> None:
    with pytest.raises(TypeError):
        prepare_bundle_dir("/tmp/x", True, 0)
    with pytest.raises(TypeError):
        prepare_bundle_dir(b"/tmp/x", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        mkdir_all_and_chown_new("/tmp/x", 0o10000, 0, 0)
    with pytest.raises(ValueError, match="re-own"):
        mkdir_and_chown("/", 0o755, 0, 0)
