"""Per-layer health of a deep stack: gradient norms, output scales, and a figure of both.

Lesson 06 uses these to show why transformers need residual connections and where the
layer norm goes; any stack of layers works (a ``GPT``'s ``model.h``, a list of MLPs, ...)::

    def forward_backward():                            # one pass through the layers
        loss_fn(stack(x)).backward()

    rms = layer_output_rms(layers, forward_backward)   # each layer's output scale
    grads = layer_grad_norms(layers)                   # each layer's gradient norm
    plot_per_layer({"residual": grads, "plain": other}, ylabel="gradient norm")
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["layer_grad_norms", "layer_output_rms", "plot_per_layer"]


def layer_grad_norms(layers: Iterable[nn.Module]) -> list[float]:
    """After ``loss.backward()``: the L2 norm of all parameter gradients of each layer.

    One float per layer, in order: sqrt(sum of squared gradient entries over the layer's
    parameters), computed in float64 so that tiny (vanishing) gradients such as 1e-30 do not
    round to 0 when squared. Parameters without a gradient count as 0; a layer with no
    gradient at all gives 0.0.
    """
    norms = []
    for layer in layers:
        sq = sum((p.grad.detach().double().pow(2).sum().item() for p in layer.parameters()
                  if p.grad is not None), 0.0)
        norms.append(math.sqrt(sq))
    return norms


def _first_tensor(out: Any) -> Tensor | None:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
        return out[0]
    return None


def layer_output_rms(layers: Sequence[nn.Module], run: Callable[[], Any]) -> list[float]:
    """Call ``run()``, a forward pass that goes through ``layers`` (a forward and backward pass
    is fine too), and return the root-mean-square of each layer's output,
    sqrt(mean(out ** 2)), one float per layer.

    Forward hooks record the outputs (the first element when a layer returns a tuple); they
    are removed afterwards, also when ``run`` raises. A layer called more than once keeps
    its last call; a layer ``run`` never calls raises ValueError. ``run`` runs as it is, with
    gradients on unless it turns them off, so one pass can give both the output scales and,
    through ``loss.backward()`` inside ``run``, the gradients for :func:`layer_grad_norms`.
    """
    layers = list(layers)
    seen: dict[int, float] = {}
    handles = []
    for i, layer in enumerate(layers):
        def hook(_module: nn.Module, _inputs: Any, out: Any, i: int = i) -> None:
            t = _first_tensor(out)
            if t is not None:
                seen[i] = t.detach().double().pow(2).mean().sqrt().item()
        handles.append(layer.register_forward_hook(hook))
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    missing = [i for i in range(len(layers)) if i not in seen]
    if missing:
        raise ValueError(f"run() did not call layers {missing[:8]} (or they returned no "
                         "tensor); pass the layers that the forward pass goes through.")
    return [seen[i] for i in range(len(layers))]


def plot_per_layer(curves: Mapping[str, Sequence[float]], ylabel: str, title: str = "",
                   log: bool = True, ax: Any = None):
    """One line per entry of ``curves`` (label -> one value per layer), layer index on x.

    ``log=True`` uses a log scale on y, where vanishing and exploding values show as straight
    lines; values that cannot be drawn there (0, negative, inf, nan) are left out of their line
    and counted in its legend label. Draws into ``ax`` when given; returns the Figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 3.5))
    else:
        fig = ax.figure
    for label, values in curves.items():
        v = torch.tensor([float(x) for x in values], dtype=torch.float64)
        ok = torch.isfinite(v) & (v > 0 if log else torch.ones_like(v, dtype=torch.bool))
        n_bad = int((~ok).sum())
        why = "0 or inf" if log else "inf or nan"
        note = f" ({n_bad} not drawn: {why})" if n_bad else ""
        layers = torch.arange(len(v))
        ax.plot(layers[ok].tolist(), v[ok].tolist(), marker="o", markersize=3,
                label=label + note)
    if log:
        ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return fig
