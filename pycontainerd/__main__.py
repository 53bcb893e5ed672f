"""``python -m pycontainerd``: the ``pycontainerd`` command."""

import sys

from pycontainerd.cli import main

if __name__ == "__main__":
    sys.exit(main())
