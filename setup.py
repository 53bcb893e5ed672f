"""Build hook: the cffi module plus the pcd-handoff helper. All metadata lives in pyproject.toml."""

from __future__ import annotations

import importlib.util
import os
import shutil

from setuptools import setup
from setuptools.command.build_ext import build_ext

HELPER_SOURCE = os.path.join("csrc", "handoff", "pcd-handoff.c")
HELPER_NAME = "pcd-handoff"
HELPER_PACKAGE = "pycontainerd._native"
HELPER_CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]
# Linked in only by a sanitizer build, see that file.
HELPER_SANITIZE_OPTIONS = os.path.join("csrc", "handoff", "sanitize-options.c")


def sanitizer_flags() -> tuple[list[str], list[str]]:
    """The ``$PCD_SANITIZE`` flags, from the one place that defines them: csrc/build_native.py."""
    spec = importlib.util.spec_from_file_location("pcd_build_native", os.path.join("csrc", "build_native.py"))
    if spec is None or spec.loader is None:
        raise RuntimeError("cannot load csrc/build_native.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    flags: tuple[list[str], list[str]] = module.sanitizer_flags()
    return flags


def _helper_inputs() -> tuple[list[str], list[str], list[str]]:
    """Sources, compile flags and link flags of the helper (a sanitizer build adds to all three)."""
    sanitize_compile, sanitize_link = sanitizer_flags()
    if not sanitize_compile:
        return [HELPER_SOURCE], HELPER_CFLAGS, []
    sources = [HELPER_SOURCE]
    cflags = HELPER_CFLAGS + sanitize_compile
    log = os.environ.get("PCD_SANITIZE_LOG", "")
    if log:
        # The prefix becomes a C string and a value in a sanitizer option list.
        if not os.path.isabs(log) or any(c in log for c in "\"\\:"):
            raise RuntimeError(f"PCD_SANITIZE_LOG={log!r}: must be absolute, without quote, backslash or ':'")
        sources.append(HELPER_SANITIZE_OPTIONS)
        cflags.append(f'-DPCD_SANITIZE_LOG="{log}"')
    return sources, cflags, sanitize_link


class BuildExtWithHelper(build_ext):
    """``build_ext`` that also links the standalone ``pcd-handoff`` program.

    The helper is an executable that containerd's shim runs, not a Python
    extension, so it is compiled with the same compiler into the build lib
    (wheels) and copied next to the cffi module for in-place/editable builds.
    """

    def run(self) -> None:
        """Build the extensions, then the helper (and its in-place copy when ``inplace``)."""
        super().run()
        built = self._build_helper()
        if self.inplace:
            target = self._inplace_helper()
            self.copy_file(built, target)

    def _package_dir(self) -> str:
        return os.path.join(self.build_lib, *HELPER_PACKAGE.split("."))

    def _inplace_helper(self) -> str:
        build_py = self.get_finalized_command("build_py")
        return os.path.join(build_py.get_package_dir(HELPER_PACKAGE), HELPER_NAME)

    def _build_helper(self) -> str:
        out_dir = self._package_dir()
        target = os.path.join(out_dir, HELPER_NAME)
        fresh = os.path.exists(target) and os.path.getmtime(target) >= os.path.getmtime(HELPER_SOURCE)
        if fresh and not self.force:
            return target
        compiler = self.compiler
        if compiler is None or isinstance(compiler, str):
            from distutils.ccompiler import new_compiler
            from distutils.sysconfig import customize_compiler

            compiler = new_compiler(compiler=compiler, force=self.force)
            customize_compiler(compiler)
        sources, cflags, ldflags = _helper_inputs()
        objects = compiler.compile(
            sources, output_dir=os.path.join(self.build_temp, "handoff"), extra_postargs=cflags
        )
        os.makedirs(out_dir, exist_ok=True)
        tmp = target + ".tmp"
        compiler.link_executable(objects, os.path.basename(tmp), output_dir=out_dir, extra_postargs=ldflags)
        os.chmod(tmp, 0o755)
        shutil.move(tmp, target)
        return target

    def get_outputs(self) -> list[str]:
        """The extension modules and the helper, as installed from the build lib."""
        return [*super().get_outputs(), os.path.join(self._package_dir(), HELPER_NAME)]

    def get_output_mapping(self) -> dict[str, str]:
        """Build-lib file -> in-place copy, for setuptools' editable wheels (>= 64)."""
        mapping = dict(super().get_output_mapping())
        if self.inplace:
            mapping[os.path.join(self._package_dir(), HELPER_NAME)] = self._inplace_helper()
        return mapping


setup(
    ext_package="pycontainerd._native",
    cffi_modules=["csrc/build_native.py:ffi"],
    cmdclass={"build_ext": BuildExtWithHelper},
)
