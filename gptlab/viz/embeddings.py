"""Pictures of tokens: a bigram count heatmap and a 2-D map of an embedding table (lesson 03).

The pure parts (:func:`pca_2d`, :func:`char_group`, :func:`show_char`, :func:`top_tokens`)
return data and are tested; the figure functions draw them and return the Figure.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["CHAR_GROUPS", "bigram_heatmap", "char_group", "embedding_scatter", "pca_2d",
           "show_char", "top_tokens"]

# group -> colour, in legend order
CHAR_GROUPS: dict[str, str] = {
    "vowel": "tab:red",
    "consonant": "tab:blue",
    "VOWEL (upper case)": "tab:orange",
    "CONSONANT (upper case)": "tab:cyan",
    "digit": "tab:purple",
    "punctuation": "tab:green",
    "space / newline": "black",
    "other": "tab:gray",
}


def char_group(ch: str) -> str:
    """Which kind of character ``ch`` is: a key of :data:`CHAR_GROUPS`."""
    if len(ch) != 1:
        return "other"
    if ch.isspace():
        return "space / newline"
    if ch.isdigit():
        return "digit"
    if ch.isalpha():
        vowel = ch.lower() in "aeiou"
        if ch.isupper():
            return "VOWEL (upper case)" if vowel else "CONSONANT (upper case)"
        return "vowel" if vowel else "consonant"
    if ch.isprintable():
        return "punctuation"
    return "other"


def show_char(ch: str) -> str:
    """A visible label for a token: ``"\\n"`` -> ``"⏎"``, ``" "`` -> ``"␣"``, tab -> ``"⇥"``."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥", "\r": "␍"}.get(ch, ch)


def pca_2d(x: Tensor) -> tuple[Tensor, Tensor]:
    """Project the rows of ``x`` (N, D) onto their two main directions of variation.

    Returns ``(coords, explained)``: coords (N, 2), and the fraction of the total variance
    that each of the two directions explains (2,). The rows are centred, then projected on
    the top two right singular vectors; each direction's sign is chosen so that its
    largest coordinate is positive, which makes the picture reproducible.
    """
    if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError(f"pca_2d needs a 2-D tensor with at least 2 rows and 2 columns, got "
                         f"shape {tuple(x.shape)}")
    x = x.detach().float().cpu()
    centred = x - x.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    coords = centred @ vh[:2].T  # (N, 2)
    flip = torch.sign(coords.gather(0, coords.abs().argmax(dim=0, keepdim=True)))
    coords = coords * torch.where(flip == 0, 1.0, flip)
    variance = s**2
    return coords, variance[:2] / variance.sum().clamp(min=1e-30)


def top_tokens(counts: Tensor, k: int) -> Tensor:
    """The ids of the ``k`` most frequent tokens of a bigram count table (V, V), most frequent
    first (a token's frequency: how often it appears as the current or the next token)."""
    freq = counts.sum(dim=0) + counts.sum(dim=1)
    k = min(k, counts.shape[0])
    return torch.argsort(freq, descending=True, stable=True)[:k]


def bigram_heatmap(counts: Tensor, chars: Sequence[str], k: int = 25, ax=None):
    """Heatmap of the bigram counts among the ``k`` most common tokens (log colour scale):
    row = current token, column = next token. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    if counts.dim() != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] != len(chars):
        raise ValueError(f"counts must be (V, V) with V = len(chars) = {len(chars)}, got "
                         f"{tuple(counts.shape)}")
    top = top_tokens(counts, k)
    sub = counts[top][:, top].float().cpu()
    labels = [show_char(chars[i]) for i in top.tolist()]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 6))
    else:
        fig = ax.figure
    image = ax.imshow(sub.clamp(min=1).numpy(), cmap="viridis", norm=LogNorm(vmin=1))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("next character")
    ax.set_ylabel("current character")
    ax.set_title(f"how often one character follows another ({len(labels)} most common)")
    ax.grid(False)
    fig.colorbar(image, ax=ax, label="count (log scale)", shrink=0.8)
    return fig


def embedding_scatter(weights: Tensor, chars: Sequence[str], ax=None, title: str | None = None):
    """Each row of ``weights`` (V, C) as a point, projected to 2-D with :func:`pca_2d`, drawn as
    its character and coloured by :func:`char_group`. Returns the Figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if weights.dim() != 2 or weights.shape[0] != len(chars):
        raise ValueError(f"weights must be (V, C) with V = len(chars) = {len(chars)}, got "
                         f"{tuple(weights.shape)}")
    coords, explained = pca_2d(weights)
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 6))
    else:
        fig = ax.figure
    groups = [char_group(c) for c in chars]
    for (x, y), ch, group in zip(coords.tolist(), chars, groups):
        ax.text(x, y, show_char(ch), color=CHAR_GROUPS[group], fontsize=12, ha="center",
                va="center", fontweight="bold")
    pad = 0.08 * (coords.max(dim=0).values - coords.min(dim=0).values).clamp(min=1e-6)
    ax.set_xlim(float(coords[:, 0].min() - pad[0]), float(coords[:, 0].max() + pad[0]))
    ax.set_ylim(float(coords[:, 1].min() - pad[1]), float(coords[:, 1].max() + pad[1]))
    ax.set_xlabel(f"direction 1 ({explained[0]:.0%} of the variance)")
    ax.set_ylabel(f"direction 2 ({explained[1]:.0%} of the variance)")
    ax.set_title(title or f"{weights.shape[1]}-D character embeddings, projected to 2-D (PCA)")
    present = [g for g in CHAR_GROUPS if g in groups]
    handles = [Line2D([], [], marker="s", linestyle="", color=CHAR_GROUPS[g]) for g in present]
    ax.legend(handles, present, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    fig.tight_layout()
    return fig
