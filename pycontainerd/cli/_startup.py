"""The ``pycontainerd`` program's start-up: the garbage collector is held off while it imports.

Start-up (the imports of grpc, protobuf and pycontainerd, the parser) allocates
tens of thousands of objects and frees few of them: the collector's passes over
them find next to nothing and cost about 5 ms of a ``run --rm``. The program
holds collection off from its first line until the command has its client (or
returns), then freezes what start-up made (``gc.freeze``: moved out of the
collector's sight for good, as nearly all of it lives as long as the process)
and collects as usual from then on, through however long the command runs.
"""

from __future__ import annotations

import gc

__all__ = ["hold_collection", "resume_collection"]

_held = False


def hold_collection() -> None:
    """Stop the collector, if it runs, until :func:`resume_collection`."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def resume_collection() -> None:
    """Freeze the objects made so far and restart the collector stopped by :func:`hold_collection`."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
