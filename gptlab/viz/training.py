"""Training figures: the learning-rate schedule, loss curves, and a live loss plot.

    from gptlab.viz.training import LivePlot, plot_losses, plot_lr_schedule
    train(model, tr, va, cfg, callbacks=[LivePlot()])   # redraws in place in a notebook
    plot_losses("runs/mine/log.jsonl")                   # the same figure from a log file
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from gptlab.callbacks import Callback, read_log

__all__ = ["LivePlot", "plot_losses", "plot_lr_schedule"]


def plot_lr_schedule(cfg: Any, ax: Any = None) -> Any:
    """The learning rate of every step of ``cfg`` (a TrainConfig): warmup, then cosine."""
    import matplotlib.pyplot as plt

    from gptlab.schedule import lr_at, schedule_params

    if ax is None:
        _, ax = plt.subplots()
    steps = range(cfg.max_steps)
    ax.plot(steps, [lr_at(s, cfg) for s in steps])
    warmup = schedule_params(cfg)[2]
    if warmup:
        ax.axvline(warmup, color="gray", ls=":", label=f"end of warmup ({warmup})")
        ax.legend()
    ax.set(xlabel="step", ylabel="learning rate", title="learning-rate schedule")
    return ax.figure


def plot_losses(records: Iterable[dict[str, Any]] | str | os.PathLike, ax: Any = None) -> Any:
    """Train loss per step (thin) and the evaluations' train/val loss (dots) of a run: the
    records a trainer reports, or a ``log.jsonl`` path."""
    import matplotlib.pyplot as plt

    if isinstance(records, (str, os.PathLike)):
        records = read_log(Path(records))
    records = list(records)
    if ax is None:
        _, ax = plt.subplots()
    _draw(ax, records)
    return ax.figure


def _draw(ax: Any, records: list[dict[str, Any]]) -> None:
    ax.clear()
    steps = [r for r in records if r["kind"] == "train" and isinstance(r.get("loss"), float)]
    if steps:
        ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.4,
                color="C0", label="batch loss")
    evals = [r for r in records if r["kind"] == "eval"]
    for key, color in (("train_loss", "C0"), ("val_loss", "C1")):
        pts = [(r["step"], r[key]) for r in evals if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), "o-", color=color, ms=3, label=key.replace("_", " "))
    ax.set(xlabel="step", ylabel="loss (cross-entropy)", title="training")
    if steps or evals:
        ax.legend()


class LivePlot(Callback):
    """A loss figure that redraws in place while training runs in a notebook.

    It redraws at every evaluation and at most every ``min_interval_s`` seconds for training
    steps (drawing costs time). Outside a notebook it only keeps the figure (``.figure``).
    """

    def __init__(self, min_interval_s: float = 1.0, figsize: tuple[float, float] = (7, 3.5)):
        self.min_interval_s, self.figsize = min_interval_s, figsize
        self.records: list[dict[str, Any]] = []
        self.figure: Any = None
        self._handle: Any = None
        self._last = 0.0

    def on_train_start(self, trainer: Any) -> None:
        import matplotlib.pyplot as plt

        self.figure, self.ax = plt.subplots(figsize=self.figsize)
        plt.close(self.figure)  # shown through the display handle, not again at cell end
        self._handle = _display(self.figure)

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        self.records.append(record)
        now = time.monotonic()
        if record["kind"] == "eval" or now - self._last >= self.min_interval_s:
            self.redraw()
            self._last = now

    def on_train_end(self, trainer: Any) -> None:
        self.redraw()

    def redraw(self) -> None:
        if self.figure is None:
            return
        _draw(self.ax, self.records)
        if self._handle is not None:
            self._handle.update(self.figure)


def _display(fig: Any) -> Any:
    """A display handle in a running IPython kernel, else None."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return None
    if get_ipython() is None:
        return None
    return display(fig, display_id=True)
