"""Figures for position encodings (lesson 04): the table as a heatmap, similarity by offset.

    from gptlab.positional import sinusoidal_table
    from gptlab.viz.positional import plot_position_table, plot_similarity_by_offset

    table = sinusoidal_table(128, 64)               # (T, C)
    plot_position_table(table)                      # one row per position, one column per dim
    plot_similarity_by_offset(sinusoidal_table(512, 64), starts=(100, 250, 400), max_offset=80)

Both work for any (T, C) table of position vectors, a trained ``wpe.weight`` included. The
numbers behind the second figure come from :func:`similarity_by_offset`, a pure function.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["plot_position_table", "plot_similarity_by_offset", "similarity_by_offset"]


def _check_table(table: Tensor) -> Tensor:
    if not isinstance(table, Tensor) or table.dim() != 2:
        shape = tuple(table.shape) if isinstance(table, Tensor) else type(table).__name__
        raise ValueError(f"expected a (T, C) tensor of position vectors, got {shape}.")
    return table.detach().float().cpu()


def similarity_by_offset(table: Tensor, starts: Sequence[int], max_offset: int) -> Tensor:
    """Dot products ``table[p] . table[p + k]`` for each start ``p`` and k = -max_offset..max_offset.

    Returns a (len(starts), 2 * max_offset + 1) float tensor; column ``max_offset + k`` holds
    offset k. For the sinusoidal table every row is the same curve, sum_i cos(k * w_i): the
    similarity of two positions depends only on their distance. ValueError when some
    ``p + k`` falls outside the table.
    """
    t = _check_table(table)
    T = t.shape[0]
    if max_offset < 0:
        raise ValueError(f"max_offset must be >= 0, got {max_offset}.")
    starts = [int(p) for p in starts]
    if not starts:
        raise ValueError("starts is empty: give at least one position p to compare from.")
    bad = [p for p in starts if p - max_offset < 0 or p + max_offset >= T]
    if bad:
        raise ValueError(
            f"start positions {bad} are too close to an edge of the table (T = {T}) for "
            f"max_offset = {max_offset}: every start p needs {max_offset} <= p <= "
            f"{T - 1 - max_offset}. Use a longer table or a smaller max_offset."
        )
    offsets = torch.arange(-max_offset, max_offset + 1)  # (K,)
    rows = [t[p + offsets] @ t[p] for p in starts]  # each (K,)
    return torch.stack(rows)  # (len(starts), K)


def plot_position_table(
    table: Tensor, ax: Any = None, title: str | None = None, cmap: str = "RdBu_r"
) -> Any:
    """Heatmap of a (T, C) position table: position down, dimension across. Returns the Figure."""
    import matplotlib.pyplot as plt

    t = _check_table(table)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 4))
    else:
        fig = ax.figure
    lim = float(t.abs().max()) or 1.0
    im = ax.imshow(t.numpy(), aspect="auto", cmap=cmap, vmin=-lim, vmax=lim,
                   interpolation="nearest")
    ax.set_xlabel("dimension")
    ax.set_ylabel("position")
    ax.grid(False)
    ax.set_title(title or f"position table ({t.shape[0]} x {t.shape[1]})")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    return fig


def plot_similarity_by_offset(
    table: Tensor,
    starts: Sequence[int],
    max_offset: int,
    ax: Any = None,
    title: str | None = None,
) -> Any:
    """One curve per start p: ``table[p] . table[p + k]`` against the offset k. Returns the Figure.

    Curves that lie on top of each other mean the similarity depends only on the offset.
    """
    import matplotlib.pyplot as plt

    sims = similarity_by_offset(table, starts, max_offset)  # (len(starts), K)
    offsets = torch.arange(-max_offset, max_offset + 1)
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
    else:
        fig = ax.figure
    styles = ["-", "--", ":", "-."]
    for i, (p, row) in enumerate(zip(starts, sims)):
        ax.plot(offsets.numpy(), row.numpy(), styles[i % len(styles)], lw=2 if i == 0 else 1.5,
                label=f"p = {int(p)}")
    ax.set_xlabel("offset k")
    ax.set_ylabel("table[p] . table[p + k]")
    ax.set_title(title or "similarity of two positions against their offset")
    ax.legend()
    return fig
