"""Build hook: only the cffi module. All metadata lives in pyproject.toml."""

from setuptools import setup

setup(
    ext_package="pycontainerd._native",
    cffi_modules=["csrc/build_native.py:ffi"],
)
