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


def test_readme_aio_registry_example_runs_as_written(containerd_address, namespace, monkeypatch, tmp_path):
    text = README.read_text()
    block = text.split("<!-- aio-registry-example -->\n```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.setenv("CONTAINERD_ADDRESS", containerd_address)
    monkeypatch.setenv("CONTAINERD_NAMESPACE", namespace)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {"__name__": "__main__"})
