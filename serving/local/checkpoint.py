"""Publishing a locally built model checkpoint: readable by every user, in one rename."""

from __future__ import annotations

from pathlib import Path
from typing import Callable


def publish(built: Path, out: Path, complete: Callable[[Path], bool]) -> None:
    """Move the checkpoint directory `built` to `out`. safetensors writes its file 0600: every file
    is made readable first, so a non-root Ray (the cluster box runs the worker as uid 1000, like the
    image) can load it. The rename is atomic, so a concurrent reader never sees half a checkpoint;
    if it fails because another builder got there first, `complete(out)` decides whether that is fine."""
    built.chmod(0o755)
    for path in built.iterdir():
        path.chmod(0o644)
    try:
        built.rename(out)
    except OSError:
        if not complete(out):
            raise
