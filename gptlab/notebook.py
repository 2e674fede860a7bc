"""What every lesson's first cell calls, and the one switch that makes lessons quick.

Smoke mode (``GPTLAB_SMOKE=1``, set by the tests) shrinks every long computation through
:func:`budget`, so a notebook never carries two code paths: it asks for the full size and
the smoke size in one call, and runs whichever applies.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from gptlab.device import describe_device, pick_device, seed_everything

SMOKE_ENV = "GPTLAB_SMOKE"


def is_smoke() -> bool:
    """True when ``$GPTLAB_SMOKE`` asks for the quick version of everything."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def budget(full, smoke):
    """``full`` normally, ``smoke`` in smoke mode: ``steps = budget(2000, 20)``."""
    return smoke if is_smoke() else full


@dataclass(frozen=True)
class NotebookContext:
    device: torch.device
    seed: int
    smoke: bool

    def __repr__(self) -> str:
        mode = "smoke mode (quick run)" if self.smoke else "full mode"
        return f"device={describe_device(self.device)}, seed={self.seed}, {mode}"


def setup_notebook(seed: int = 1337, device: str | None = None, quiet: bool = False):
    """Pick the device, seed everything, set the figure style; return the context.

    Every lesson starts with ``ctx = gptlab.setup_notebook()`` so all lessons behave the same
    on a laptop CPU, an Apple GPU, Colab, and in the tests.
    """
    dev = pick_device(device)
    seed_everything(seed)
    _figure_style()
    ctx = NotebookContext(device=dev, seed=seed, smoke=is_smoke())
    if not quiet:
        print(f"gptlab ready: {ctx!r}")
    return ctx


def _figure_style() -> None:
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.figsize": (7, 3.5),
            "figure.dpi": 100,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    )
