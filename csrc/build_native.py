"""cffi (API, out-of-line) build script for ``pycontainerd._native._ffi``.

Each concern lives in one ``csrc/<name>.c``, its real header ``csrc/<name>.h``
(included by the generated module) and the declarations cffi must parse in
``csrc/<name>.cdef.h``; this script concatenates them.  The package
version is stamped into the module as ``PCD_VERSION`` so that
``pycontainerd._native`` can refuse a stale in-place build.
"""

from __future__ import annotations

import os
import pathlib
import re

from cffi import FFI

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def package_version() -> str:
    """Read ``__version__`` from ``pycontainerd/_version.py`` without importing it."""
    text = (ROOT / "pycontainerd" / "_version.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise RuntimeError("pycontainerd/_version.py has no __version__")
    return match.group(1)


def modules() -> list[str]:
    """Names of the C modules: every ``csrc/<name>.c`` with a ``<name>.cdef.h``."""
    names = (p.name[: -len(".cdef.h")] for p in HERE.glob("*.cdef.h"))
    return sorted(name for name in names if (HERE / f"{name}.c").exists())


def sanitizer_flags() -> tuple[list[str], list[str]]:
    """Compile and link flags for the sanitizers named in ``$PCD_SANITIZE`` (none when unset).

    ``PCD_SANITIZE=address,undefined`` is how ``scripts/sanitize`` builds its separate
    copy of the package; setup.py applies the same flags to ``pcd-handoff``. Every
    report is fatal (``-fno-sanitize-recover``): UBSan would otherwise print and go on,
    and a test could pass over it. ``-O1`` keeps the stacks readable, and ``-fno-wrapv``
    undoes the ``-fwrapv`` of Python's own CFLAGS, under which signed overflow is defined
    and UBSan does not look for it.
    """
    wanted = os.environ.get("PCD_SANITIZE", "").strip()
    if not wanted:
        return [], []
    if not re.fullmatch(r"[a-z]+(?:,[a-z]+)*", wanted):
        raise RuntimeError(f"PCD_SANITIZE={wanted!r}: expected a list such as address,undefined")
    compile_args = [
        f"-fsanitize={wanted}",
        "-fno-sanitize-recover=all",
        "-fno-omit-frame-pointer",
        "-fno-wrapv",
        "-g",
        "-O1",
    ]
    return compile_args, [f"-fsanitize={wanted}"]


def build_ffi() -> FFI:
    """Assemble the FFI object from the per-module cdef headers and sources."""
    builder = FFI()
    cdef = ["static const char *const PCD_VERSION;"]
    cdef += [(HERE / f"{name}.cdef.h").read_text() for name in modules()]
    builder.cdef("\n".join(cdef))
    # setuptools wants source paths relative to setup.py's directory.
    rel = os.path.relpath(HERE, os.getcwd()) if os.getcwd() == str(ROOT) else str(HERE)
    includes = ['#include "pcd.h"'] + [f'#include "{n}.h"' for n in modules() if (HERE / f"{n}.h").exists()]
    sanitize_compile, sanitize_link = sanitizer_flags()
    builder.set_source(
        "_ffi",
        "\n".join(includes) + f'\nstatic const char *const PCD_VERSION = "{package_version()}";\n',
        sources=[os.path.join(rel, f"{name}.c") for name in modules()],
        include_dirs=[rel],
        extra_compile_args=[
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror=implicit-function-declaration",
            "-std=gnu11",
            *sanitize_compile,
        ],
        extra_link_args=sanitize_link,
    )
    return builder


ffi = build_ffi()

if __name__ == "__main__":
    ffi.compile(tmpdir=str(ROOT / "build" / "cffi"), verbose=True)
