"""Shared pytest configuration (the integration fixtures live in tests/integration/conftest.py).

Two session-wide rules live here:

* **CI cannot pass by skipping.** Under ``CI=true`` a skipped test fails the run
  unless its reason matches :data:`CI_ALLOWED_SKIPS`, an explicit list of limits
  of the machine, each printed in the summary. Not being root, or having no
  working containerd, is therefore a failure in CI, not a quiet skip of the
  integration layer.
* **One line per layer** at the end: tests executed, failed and skipped for the
  unit layer and for the integration layer (named by the containerd it ran on).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path

import pytest
from _session_report import CONTAINERD_LABEL

_HERE = Path(__file__).parent

#: Skip reasons CI accepts (regex on the reason → why that is a limit of the machine, not of the code).
CI_ALLOWED_SKIPS: dict[str, str] = {
    # Opt-in long repetition of test_byte_exact_output_and_exit_code; not a coverage gap.
    r"^soak test: run with ": "the soak test is opt-in (-m soak)",
}



def in_ci() -> bool:
    """Whether the run is CI's (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def pytest_addoption(parser: pytest.Parser) -> None:
    # Registered here, not in tests/integration/conftest.py, so the option is
    # known however pytest is invoked (that conftest loads late otherwise).
    parser.addoption(
        "--containerd-address",
        default=None,
        help="run integration tests against this containerd socket (also $PYCONTAINERD_TEST_ADDRESS) "
        "instead of a private daemon",
    )


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    return str(longrepr)


def _allowed(reason: str) -> str | None:
    for pattern, why in CI_ALLOWED_SKIPS.items():
        if re.search(pattern, reason):
            return why
    return None


class _SessionReport:
    """Counts outcomes per layer and enforces the CI skip rule."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: dict[str, Counter[str]] = {}
        self.unexpected_skips: list[tuple[str, str]] = []
        self.allowed_skips: list[tuple[str, str]] = []

    def _layer(self, path: Path) -> str:
        if _HERE / "integration" in path.parents:
            return "integration (" + self.config.stash.get(CONTAINERD_LABEL, "no containerd started") + ")"
        if _HERE / "unit" in path.parents:
            return "unit"
        return "other"

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # nodeid is relative to the rootdir whatever the test did to the working directory.
        path = (self.config.rootpath / report.nodeid.split("::", 1)[0]).resolve()
        counts = self.counts.setdefault(self._layer(path), Counter())
        if hasattr(report, "wasxfail"):
            if report.when == "call" or report.skipped:
                counts["xfailed"] += 1
            return
        if report.when == "call" or (report.when == "setup" and not report.passed):
            counts[report.outcome] += 1
        elif report.when == "teardown" and report.failed:
            counts["failed"] += 1  # an error in teardown after a passed call
        if report.skipped:
            reason = _skip_reason(report)
            bucket = self.allowed_skips if _allowed(reason) else self.unexpected_skips
            bucket.append((report.nodeid, reason))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if in_ci() and self.unexpected_skips and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        tr = terminalreporter
        if self.allowed_skips:
            tr.section("skips CI accepts (limits of this machine)")
            for nodeid, reason in self.allowed_skips:
                tr.line(f"{nodeid}: {reason} [{_allowed(reason)}]")
        if self.unexpected_skips and in_ci():
            tr.section("skips CI does not accept (CI=true): the run fails", red=True)
            for nodeid, reason in self.unexpected_skips:
                tr.line(f"{nodeid}: {reason}")
        tr.section("tests per layer")
        lines = []
        for layer, counts in sorted(self.counts.items()):
            executed = counts["passed"] + counts["failed"]
            extra = f", {counts['xfailed']} xfailed" if counts["xfailed"] else ""
            failed, skipped = counts["failed"], counts["skipped"]
            lines.append(f"{layer}: {executed} executed, {failed} failed, {skipped} skipped{extra}")
        for line in lines:
            tr.line(line)
        # scripts/test-matrix repeats every session's lines at the end of the matrix.
        summary = os.environ.get("PYCONTAINERD_TEST_SUMMARY")
        if summary:
            with open(summary, "a") as f:
                f.writelines(line + "\n" for line in lines)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_SessionReport(config), "pycontainerd-session-report")
