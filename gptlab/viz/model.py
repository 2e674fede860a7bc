"""Lesson 07 figures: where a GPT's parameters are, and readable sizes and durations.

``param_shares(cfg)`` and ``plot_param_breakdown({"gpt2": cfg, ...})`` show how the parameters
split between the embeddings, attention, MLPs and norms; ``format_count`` and
``format_seconds`` turn 124439808 into "124.4M" and 93784.0 into "1.1 days" for tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from gptlab.config import GPTConfig, param_breakdown

__all__ = ["PART_COLORS", "format_count", "format_seconds", "param_shares",
           "plot_param_breakdown"]

PART_COLORS = {  # the parts of param_breakdown, in its order
    "wte": "#4c72b0",
    "wpe": "#8fb0e0",
    "attn (all layers)": "#dd8452",
    "mlp (all layers)": "#55a868",
    "norms": "#c44e52",
    "lm_head": "#8172b3",
}


def format_count(n: float) -> str:
    """A count as people say it: 950 -> '950', 108352 -> '108.4K', 124439808 -> '124.4M',
    1557611200 -> '1.56B', 2.5e12 -> '2.50T'; from 1e15 on, scientific: '1.9e+18'."""
    if not math.isfinite(n):
        return str(n)
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n >= 1e15:
        return f"{sign}{n:.2g}"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{sign}{value:.2f}{unit}" if value < 10 and unit in "BT" else (
                f"{sign}{value:.1f}{unit}")
    return f"{sign}{n:.0f}" if float(n).is_integer() else f"{sign}{n:.3g}"


def format_seconds(s: float) -> str:
    """A duration at a readable scale: 0.004 -> '4.0 ms', 42 -> '42.0 s', 5400 -> '1.5 h',
    3e6 -> '34.7 days', 1e9 -> '31.7 years'."""
    if not math.isfinite(s):
        return str(s)
    if s < 1:
        return f"{s * 1000:.1f} ms"
    for unit, scale in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if s >= scale:
            return f"{s / scale:.1f} {unit}"
    return f"{s:.1f} s"


def param_shares(cfg: GPTConfig) -> dict[str, float]:
    """The fraction of the model's parameters in each part of ``param_breakdown``; sums to 1."""
    parts = param_breakdown(cfg)
    total = sum(parts.values())
    return {k: v / total for k, v in parts.items()}


def plot_param_breakdown(configs: Mapping[str, GPTConfig], ax: Any = None):
    """One horizontal bar per config, split into the share of each part (wte, wpe, attention,
    MLP, norms, an untied lm_head), labelled with the total count. Returns the Figure."""
    if not configs:
        raise ValueError("plot_param_breakdown needs at least one config, e.g. "
                         "{'gpt2': GPTConfig.preset('gpt2')}.")
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(configs) + 1.6))
    else:
        fig = ax.figure
    names = list(configs)
    shares = [param_shares(configs[n]) for n in names]
    ys = range(len(names))
    left = [0.0] * len(names)
    for part, color in PART_COLORS.items():
        widths = [100 * s[part] for s in shares]
        if not any(widths):
            continue
        ax.barh(ys, widths, left=left, color=color, label=part, height=0.6)
        for y, (x0, w) in enumerate(zip(left, widths)):
            if w >= 6:
                ax.text(x0 + w / 2, y, f"{w:.0f}%", ha="center", va="center", fontsize=8,
                        color="white")
        left = [a + b for a, b in zip(left, widths)]
    ax.set_yticks(list(ys))
    ax.set_yticklabels([f"{n}  ({format_count(sum(param_breakdown(configs[n]).values()))})"
                        for n in names])
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the parameters (%)")
    ax.set_title("Where the parameters are")
    ax.grid(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=6, fontsize=8,
              frameon=False)
    fig.tight_layout()
    return fig
