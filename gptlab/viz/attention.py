"""Attention maps: what every head of a model looks at, and a heatmap to show it.

``attention_maps(model, idx)`` runs a normal forward pass of any ``nn.Module`` that contains
``gptlab.attention.CausalSelfAttention`` layers (a GPT, or a small stack built in a lesson)
and returns the attention weights of every layer and head, shape (n_layer, n_head, T, T).
It does not need the model to return weights: a forward pre-hook records the input of each
attention layer during ``model(idx)``, then each layer recomputes its weights from that
input with ``layer(x, return_weights=True)``.

``plot_attention(weights, tokens)`` draws one (T, T) map with the tokens as tick labels:
row t is query token t, column s is key token s, and row t shows how token t spreads its
attention over tokens 0 .. t.

The widget ``gptlab.widgets.attention_explorer`` is a thin front end over these two.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from gptlab.attention import CausalSelfAttention

__all__ = ["attention_layers", "attention_maps", "plot_attention", "token_labels"]

# How whitespace tokens are drawn, so that they stay visible as tick labels.
_VISIBLE = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "␍"}


def attention_layers(model: nn.Module) -> list[CausalSelfAttention]:
    """The ``CausalSelfAttention`` submodules of ``model`` in registration order (for a GPT:
    layer 0, 1, ...); ``model`` itself counts when it is one."""
    return [m for m in model.modules() if isinstance(m, CausalSelfAttention)]


def _first_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


@torch.no_grad()
def attention_maps(model: nn.Module, idx: Tensor | Sequence[int]) -> Tensor:
    """Attention weights of every attention layer and head of ``model`` on one sequence.

    ``idx``: token ids of shape (T,) or (1, T) (a list of ints works too). ``model(idx)`` is
    called once, in eval mode and without gradients (the model's train/eval mode is restored
    afterwards); its output is ignored. Returns a float CPU tensor of shape
    (n_layer, n_head, T, T), layers in the order they ran (for a GPT: first block first).
    Each row sums to 1 and is zero above the diagonal (no token sees the future).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}.")
    idx = torch.as_tensor(idx)
    if idx.dim() == 1:
        idx = idx.unsqueeze(0)  # (1, T)
    if idx.dim() != 2 or idx.shape[0] != 1 or idx.shape[1] == 0:
        raise ValueError(
            f"idx must hold one non-empty sequence of token ids, shape (T,) or (1, T); got shape "
            f"{tuple(idx.shape)}. Pick one row: attention_maps(model, idx[0])."
        )
    layers = attention_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no gptlab.attention.CausalSelfAttention submodule, so "
            f"there are no attention maps to show."
        )
    inputs: list[tuple[CausalSelfAttention, Tensor]] = []

    def record(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        x = args[0] if args else kwargs["x"]
        inputs.append((module, x.detach()))  # type: ignore[arg-type]

    modes = [(m, m.training) for m in model.modules()]  # restored exactly afterwards
    try:
        model.eval()
        handles = [m.register_forward_pre_hook(record, with_kwargs=True) for m in layers]
        try:
            model(idx.to(_first_device(model)))
        finally:
            for h in handles:
                h.remove()
        # the hooks are gone: now each layer recomputes its weights from its recorded input
        maps = [module(x, return_weights=True)[1][0].float().cpu()  # (H, T, T) each
                for module, x in inputs]
    finally:
        for m, mode in modes:
            m.train(mode)
    if not inputs:
        raise ValueError(
            f"{type(model).__name__}'s forward pass did not call any of its "
            f"{len(layers)} attention layers, so there are no attention maps to show."
        )
    heads = {m.shape[0] for m in maps}
    if len(heads) != 1:
        raise ValueError(
            f"the attention layers have different numbers of heads ({sorted(heads)}); "
            "they cannot be stacked into one (n_layer, n_head, T, T) tensor."
        )
    return torch.stack(maps)  # (n_layer, n_head, T, T)


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Tick labels for tokens: whitespace made visible (' ' -> '␣', newline -> '⏎')."""
    out = []
    for tok in tokens:
        text = "".join(_VISIBLE.get(ch, ch) for ch in str(tok))
        out.append(text if text else "∅")
    return out


def plot_attention(
    weights: Tensor,
    tokens: Sequence[str],
    ax: Any = None,
    title: str | None = None,
    colorbar: bool = True,
):
    """Heatmap of one attention map; returns the matplotlib Figure.

    ``weights`` (T, T): row t = query token t, column s = key token s. ``tokens``: T strings,
    used as tick labels on both axes (whitespace made visible). Draws on ``ax`` when given,
    otherwise on a new figure sized to T.
    """
    import matplotlib.pyplot as plt

    w = torch.as_tensor(weights).detach().float().cpu()
    if w.dim() != 2 or w.shape[0] != w.shape[1]:
        raise ValueError(f"weights must be one square (T, T) map, got shape {tuple(w.shape)}.")
    T = w.shape[0]
    if len(tokens) != T:
        raise ValueError(f"got {len(tokens)} tokens for a {T} x {T} attention map; pass one "
                         "token string per row.")
    if ax is None:
        side = min(7.0, max(3.2, 0.2 * T + 1.5))
        fig, ax = plt.subplots(figsize=(side + (1.2 if colorbar else 0.0), side),
                               layout="constrained")
    else:
        fig = ax.figure
    image = ax.imshow(w.numpy(), cmap="viridis", vmin=0.0, vmax=max(1e-6, float(w.max())),
                      interpolation="nearest")
    labels = token_labels(tokens)
    step = max(1, -(-T // 48))  # at most ~48 labels per axis
    ticks = list(range(0, T, step))
    fontsize = 9 if T <= 24 else 8
    ax.set_xticks(ticks, [labels[i] for i in ticks], fontsize=fontsize,
                  rotation=90 if max((len(labels[i]) for i in ticks), default=1) > 1 else 0)
    ax.set_yticks(ticks, [labels[i] for i in ticks], fontsize=fontsize)
    ax.set_xlabel("key: the token looked at")
    ax.set_ylabel("query: the token looking")
    ax.grid(False)
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return fig
