"""The ``images`` command's pieces that need no daemon: its progress output and its imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pycontainerd.cli import _images, _output


def test_progress_is_one_line_per_stored_file_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    with _images._progress(quiet=False) as progress:
        assert progress is not None
        progress("blobs/sha256/aa", 1 << 20, 3 << 20)
        progress("blobs/sha256/aa", 3 << 20, 3 << 20)
        progress("x/layer.tar", 5, 5)
    assert capsys.readouterr().err == "blobs/sha256/aa 3.0MiB\nx/layer.tar 5B\n"
    with _images._progress(quiet=True) as progress:
        assert progress is None


def test_tqdm_is_imported_only_by_an_import_on_a_terminal() -> None:
    code = (
        "import sys\n"
        "from pycontainerd.cli import main\n"
        "main(['--address', '/nonexistent.sock', 'images', 'ls'])\n"
        "main(['--address', '/nonexistent.sock', 'images', 'import', '/nonexistent.tar'])\n"
        "main(['--address', '/nonexistent.sock', 'run', 'busybox', 'c1'])\n"
        "print('tqdm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"
    assert done.stderr.count("pycontainerd: error:") == 3


def test_human_size() -> None:
    assert [_output.human_size(n) for n in (None, 0, 1023, 1536, 64 << 20, 1 << 62)] == [
        "-", "0B", "1023B", "1.5KiB", "64.0MiB", "unlimited"
    ]
