"""State shared by the two conftests: the label of the integration layer in the summary.

``tests/`` is on ``sys.path`` (pytest's default ``prepend`` import mode puts the
directory of a rootdir-level conftest there), so both conftests import this module.
"""

from __future__ import annotations

import pytest

#: Set by the integration fixtures once the session's daemon answers, e.g. "containerd 1.7.24".
CONTAINERD_LABEL = pytest.StashKey[str]()
