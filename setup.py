"""Build hook: the cffi module plus the pcd-handoff helper. All metadata lives in pyproject.toml."""

from __future__ import annotations

import os
import shutil

from setuptools import setup
from setuptools.command.build_ext import build_ext

HELPER_SOURCE = os.path.join("csrc", "handoff", "pcd-handoff.c")
HELPER_NAME = "pcd-handoff"
HELPER_PACKAGE = "pycontainerd._native"
HELPER_CFLAGS = ["-O2", "-Wall", "-Wextra", "-std=gnu11", "-D_FORTIFY_SOURCE=2", "-fstack-protector-strong"]


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
        objects = compiler.compile(
            [HELPER_SOURCE], output_dir=os.path.join(self.build_temp, "handoff"), extra_postargs=HELPER_CFLAGS
        )
        os.makedirs(out_dir, exist_ok=True)
        tmp = target + ".tmp"
        compiler.link_executable(objects, os.path.basename(tmp), output_dir=out_dir)
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
