"""The sampling playground's back end: continue a prompt, and the next-token bar chart.

``playground_step(model, tokenizer, prompt, ...)`` does what one click of the playground's
Generate button does: it samples a continuation of ``prompt`` with the chosen settings,
reporting the text to ``on_text`` as the tokens arrive, and returns that text together with
the most likely next tokens right after the prompt, under the same settings (what the bar
chart shows). ``plot_next_token`` draws that chart. The widget
``gptlab.widgets.sampling_playground`` is a thin front end over these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from gptlab.generate import next_token_distribution, stream
from gptlab.viz.attention import token_labels

__all__ = ["playground_step", "plot_next_token", "top_tokens"]


class TextTokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def top_tokens(probs: Tensor, decode_token: Callable[[int], str],
               n: int = 10) -> list[tuple[str, float]]:
    """The n most likely tokens of a (V,) distribution as (token text, probability), most
    likely first (equal probabilities: lower id first)."""
    if probs.dim() != 1:
        raise ValueError(f"probs must be one (V,) distribution, got shape {tuple(probs.shape)}.")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    p = probs.detach().float().cpu()
    order = torch.sort(p, descending=True, stable=True).indices[:n]
    return [(decode_token(int(i)), float(p[i])) for i in order]


def playground_step(model: nn.Module, tokenizer: TextTokenizer, prompt: str,
                    temperature: float = 0.8, top_k: int | None = None,
                    top_p: float | None = None, max_new_tokens: int = 50,
                    seed: int | None = None, on_text: Callable[[str], Any] | None = None,
                    n_top: int = 10) -> tuple[str, list[tuple[str, float]]]:
    """Sample a continuation of ``prompt``; return (new text, top next tokens after prompt).

    ``top_k=None`` / ``top_p=None`` (or 0 / 1.0, the sliders' "off") switch a filter off.
    ``on_text(text_so_far)`` is called after every new token (the widget streams with it).
    The top tokens are the ``n_top`` most likely first tokens of the continuation, with the
    probabilities the sampler uses (after temperature, top-k and top-p). A ValueError says
    what is wrong with an empty prompt or a bad setting.
    """
    ids = list(tokenizer.encode(prompt))
    if not ids:
        raise ValueError("The prompt is empty: type some text to continue.")
    top_k = None if top_k in (None, 0) else top_k
    top_p = None if top_p is None or top_p >= 1.0 else top_p
    probs = next_token_distribution(model, ids, temperature=temperature, top_k=top_k,
                                    top_p=top_p)
    top = top_tokens(probs, lambda i: tokenizer.decode([i]), n_top)
    new: list[int] = []
    text = ""
    for tok in stream(model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                      top_p=top_p, seed=seed):
        new.append(int(tok))
        text = tokenizer.decode(new)
        if on_text is not None:
            on_text(text)
    return text, top


def plot_next_token(top: Sequence[tuple[str, float]], ax: Any = None,
                    title: str | None = "next-token probabilities") -> Any:
    """Horizontal bar chart of (token, probability) pairs, the most likely on top; returns
    the matplotlib Figure. Whitespace in tokens is made visible (' ' -> '␣')."""
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 0.3 * len(top) + 1.0), layout="constrained")
    else:
        fig = ax.figure
    labels = token_labels([t for t, _ in top])
    probs = [p for _, p in top]
    bars = ax.barh(range(len(top)), probs, color="tab:blue")
    ax.set_yticks(range(len(top)), labels)
    ax.invert_yaxis()  # the most likely on top
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability")
    for bar, p in zip(bars, probs):
        ax.text(min(p, 0.85) + 0.01, bar.get_y() + bar.get_height() / 2, f"{p:.3f}",
                va="center", fontsize=8)
    if title:
        ax.set_title(title)
    return fig
