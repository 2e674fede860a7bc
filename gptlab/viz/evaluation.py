"""Evaluation figures (lesson 10): the validation curves of several runs side by side.

    from gptlab.viz.evaluation import compare_runs
    compare_runs({"char": "runs/char/log.jsonl", "bpe": "runs/bpe/log.jsonl"})
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gptlab.callbacks import read_log

__all__ = ["compare_runs", "eval_curve"]


def _records(run: str | os.PathLike | Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(run, (str, os.PathLike)):
        path = Path(run)
        if path.is_dir():
            path = path / "log.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: pass a run's log.jsonl (written when "
                                    "training with out_dir), its folder, or the records.")
        return read_log(path)
    return list(run)


def eval_curve(run: str | os.PathLike | Iterable[dict[str, Any]],
               key: str = "val_loss") -> tuple[list[int], list[float]]:
    """(steps, values) of ``key`` over the evaluations of a run (a log.jsonl, its folder, or
    the records a trainer reports)."""
    xs, ys = [], []
    for r in _records(run):
        if r.get("kind") == "eval" and isinstance(r.get(key), (int, float)):
            xs.append(r["step"])
            ys.append(float(r[key]))
    return xs, ys


def compare_runs(logs: Mapping[str, str | os.PathLike | Iterable[dict[str, Any]]],
                 key: str = "val_loss", ax: Any = None) -> Any:
    """One line per run of ``key`` (default the validation loss) against the step; returns
    the Figure. Compare losses only between runs with the same tokenizer: across tokenizers
    compare bits per byte (``gptlab.evaluate``)."""
    import matplotlib.pyplot as plt

    if not logs:
        raise ValueError("compare_runs needs at least one run: {name: log path or records}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    for name, run in logs.items():
        xs, ys = eval_curve(run, key)
        if not xs:
            raise ValueError(f"run {name!r} has no evaluation records with {key!r}.")
        ax.plot(xs, ys, "o-", ms=3, label=f"{name} (best {min(ys):.3f})")
    ax.set(xlabel="step", ylabel=key.replace("_", " "), title="comparing runs")
    ax.legend()
    return ax.figure
