"""Where lessons keep what they train, so later lessons can find it.

Lesson 08 trains the course's character-level model and saves its checkpoint in
``lesson_checkpoint("lesson08")``; lessons 09-12 load it from there:

    from gptlab.model import GPT
    from gptlab.paths import lesson_checkpoint
    model = GPT.load(lesson_checkpoint())          # the folder holds tokenizer.json too

The folder is ``$GPTLAB_RUNS_DIR`` when that is set, else ``runs/`` in the gptlab cache
(``$GPTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/gptlab``, else ``~/.cache/gptlab``: the same
cache that holds downloaded corpora). Nothing here creates a folder or touches the disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from gptlab.corpora import cache_dir

__all__ = ["RUNS_ENV", "lesson_checkpoint", "runs_dir"]

RUNS_ENV = "GPTLAB_RUNS_DIR"


def runs_dir() -> Path:
    """The folder that holds the lessons' training runs (it may not exist yet)."""
    value = os.environ.get(RUNS_ENV, "").strip()
    if value:
        return Path(value).expanduser()
    return cache_dir() / "runs"


def lesson_checkpoint(name: str = "lesson08") -> Path:
    """The checkpoint folder of the run called ``name``: ``runs_dir() / name``.

    ``name`` is one folder name (letters, digits, ``-``, ``_``, ``.``), not a path.
    """
    if not isinstance(name, str) or not name or name in (".", "..") or not all(
            c.isalnum() or c in "-_." for c in name):
        raise ValueError(f"a run name is one folder name made of letters, digits, '-', '_' and "
                         f"'.', got {name!r}. Use e.g. lesson_checkpoint('lesson08').")
    return runs_dir() / name
