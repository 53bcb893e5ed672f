"""The README's asyncio example runs as written (against the test daemon, on the test rootfs)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_aio_example_runs(containerd_address, namespace, rootfs, monkeypatch, tmp_path):
    text = README.read_text()
    match = re.search(r"<!-- aio-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "the README has no aio example"
    code = match.group(1).replace("/srv/busybox", rootfs)
    code = code.replace('namespace="demo"', f'namespace="{namespace}"')
    script = tmp_path / "example.py"
    script.write_text(code)
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd_address)
    monkeypatch.setenv("CONTAINERD_NAMESPACE", namespace)
    runpy.run_path(str(script), run_name="__main__")
