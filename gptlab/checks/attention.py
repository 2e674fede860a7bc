"""Checkers for lesson 05 (self-attention): causal averaging, masked softmax weights, heads.

The expected answers are computed here with plain loops and basic tensor operations, not with
``gptlab.attention``, so each checker states exactly the behaviour it asks for.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)

__all__ = ["check_attention_weights", "check_causal_average", "check_split_heads"]


def _close(a: Tensor, b: Tensor, atol: float = 1e-5) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().double(), b.double(), atol=atol,
                                                 rtol=1e-4)


def _describe(x: Tensor) -> str:
    return f"a tensor of shape {tuple(x.shape)}"


# ----------------------------------------------------------------------------- 5.1


def _causal_average(x: Tensor) -> Tensor:
    """out[b, t] = mean of x[b, 0], ..., x[b, t], with a loop: the definition itself."""
    out = torch.zeros_like(x)
    for t in range(x.shape[1]):
        out[:, t] = x[:, : t + 1].mean(dim=1)
    return out


@exercise("5.1", "causal average with a lower-triangular matrix")
def check_causal_average(fn):
    """Check ``causal_average(x: Tensor) -> Tensor``.

    ``x`` has shape (B, T, C); the result has the same shape and ``out[b, t]`` is the mean of
    ``x[b, 0], ..., x[b, t]``: each position averages itself and the positions before it,
    never the ones after. Computed as one matrix product, ``wei @ x`` with ``wei`` the (T, T)
    lower-triangular matrix whose rows are normalised to sum to 1. ``x`` is not modified.
    """
    g = torch.Generator().manual_seed(5)
    shapes = [(1, 1, 1), (1, 3, 1), (2, 5, 3), (4, 8, 2), (1, 16, 8)]
    for shape in shapes:
        x = torch.randn(shape, generator=g)
        before = x.clone()
        got = call(fn, x)
        example = _describe(x)
        expect_type(got, torch.Tensor, "causal_average(x)", example)
        expect_shape(got, x.shape, "causal_average(x) (same shape as x)", example)
        expect_true(torch.equal(x, before), "causal_average changed its input x in place; "
                    "compute a new tensor instead.")
        expected = _causal_average(x)
        if _close(got, expected):
            continue
        T = x.shape[1]
        tril = torch.tril(torch.ones(T, T))
        if _close(got, x.mean(dim=1, keepdim=True).expand_as(x)):
            fail(f"every position got the mean over all T={T} positions, the future included "
                 f"(for {example}). Use a lower-triangular matrix, torch.tril(torch.ones(T, T)), "
                 "so position t only averages positions 0 .. t.")
        if _close(got, tril @ x):
            fail(f"position t got the *sum* of positions 0 .. t, not their mean (for {example}). "
                 "Divide each row of the triangular matrix by its row sum: "
                 "wei = wei / wei.sum(dim=1, keepdim=True).")
        if _close(got, (tril / tril.sum(dim=0, keepdim=True)) @ x):
            fail(f"the matrix was normalised column by column, not row by row (for {example}). "
                 "Row t of wei holds the weights of output t: wei.sum(dim=1, keepdim=True).")
        triu = torch.triu(torch.ones(T, T))
        if _close(got, (triu / triu.sum(dim=1, keepdim=True)) @ x):
            fail(f"position t averaged positions t .. T-1, the future (for {example}). Use the "
                 "lower triangle, torch.tril, not torch.triu.")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="causal_average(x)",
                     example=example)
    return f"matches the loop version on {len(shapes)} shapes, from (1, 1, 1) to (1, 16, 8)"


# ----------------------------------------------------------------------------- 5.2


def _weights(q: Tensor, k: Tensor, scale: float | None = None, fill: float = -math.inf,
             mask: str = "tril") -> Tensor:
    """Reference (and known wrong variants) of softmax(q k^T / sqrt(D)) with a causal mask."""
    D, T = q.shape[-1], q.shape[-2]
    scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(D) if scale is None else scale)
    ones = torch.ones(T, T, dtype=torch.bool)
    if mask != "none":
        keep = ones.tril() if mask == "tril" else ones.triu()
        scores = scores.masked_fill(~keep, fill)
    return torch.softmax(scores, dim=-1)


@exercise("5.2", "masked softmax attention weights")
def check_attention_weights(fn):
    """Check ``attention_weights(q: Tensor, k: Tensor) -> Tensor``.

    ``q`` and ``k`` have shape (..., T, D) (any number of leading batch or head dimensions).
    The result has shape (..., T, T): ``softmax(q @ k^T / sqrt(D))`` over the last dimension,
    where the scores of future keys (column s > row t) are set to ``-inf`` before the softmax,
    so each row sums to 1 and has zeros after the diagonal. Compared with a reference on
    2-, 3- and 4-dimensional inputs.
    """
    g = torch.Generator().manual_seed(52)
    shapes = [(1, 4), (5, 4), (2, 6, 8), (2, 3, 7, 16)]
    for shape in shapes:
        q = torch.randn(shape, generator=g) * 2
        k = torch.randn(shape, generator=g) * 2
        example = f"q and k of shape {shape}"
        got = call(fn, q.clone(), k.clone())
        expect_type(got, torch.Tensor, "attention_weights(q, k)", example)
        T = shape[-2]
        expect_shape(got, (*shape[:-1], T), "attention_weights(q, k) (one row of T weights "
                     "per query)", example)
        got = got.detach()
        expected = _weights(q, k)
        if _close(got, expected):
            continue
        if torch.isnan(got).any():
            fail(f"got NaN in the weights for {example}. NaN appears when a whole row of "
                 "scores is -inf (check which triangle you mask: the diagonal must be kept) "
                 "or from inf - inf.")
        D = shape[-1]
        if D > 1 and _close(got, _weights(q, k, scale=1.0)):
            fail(f"the scores are not scaled (for {example}): divide q @ k^T by sqrt(D) = "
                 f"sqrt({D}) before the softmax.")
        if D > 1 and _close(got, _weights(q, k, scale=1.0 / D)):
            fail(f"the scores were divided by D = {D}; divide by sqrt(D) = {math.sqrt(D):.3g} "
                 f"instead (for {example}).")
        sums = got.sum(dim=-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            fail(f"each row should sum to 1 (a softmax over the keys, dim=-1), got row sums "
                 f"{[round(s, 3) for s in sums.flatten()[:6].tolist()]} for {example}. Mask the "
                 "scores *before* the softmax (zeroing weights after it breaks the sums), and "
                 "take the softmax over the last dimension.")
        future = ~torch.ones(T, T, dtype=torch.bool).tril()
        if (got[..., future].abs() > 1e-6).any():
            if _close(got, _weights(q, k, fill=0.0)):
                fail(f"future keys still get weight (for {example}): the masked scores were set "
                     "to 0, and exp(0) = 1. Fill them with float('-inf') so that exp(-inf) = 0.")
            if _close(got, _weights(q, k, mask="triu")):
                fail(f"the mask keeps the upper triangle (the future) instead of the lower one "
                     f"(for {example}): keep torch.tril(torch.ones(T, T)) and fill where it is 0.")
            fail(f"query t gives weight to keys after t (above the diagonal) for {example}. "
                 "Set those scores to float('-inf') before the softmax, with a "
                 "lower-triangular mask: scores.masked_fill(tril == 0, float('-inf')).")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="attention_weights(q, k)",
                     example=example)
    return "right on (T, D), (B, T, D) and (B, H, T, D) inputs: scaled, masked, rows sum to 1"


# ----------------------------------------------------------------------------- 5.3


def _split(x: Tensor, n_head: int) -> Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)  # (B, H, T, D)


def _merge(x: Tensor) -> Tensor:
    B, H, T, D = x.shape
    return x.transpose(1, 2).reshape(B, T, H * D)  # (B, T, C)


@exercise("5.3", "split and merge heads with rearrange")
def check_split_heads(split_heads, merge_heads):
    """Check ``split_heads(x, n_head)`` and ``merge_heads(x)``.

    ``split_heads``: (B, T, C) -> (B, H, T, D) with D = C // H, where head h gets the
    channels h*D .. (h+1)*D - 1 of every position: ``rearrange(x, "b t (h d) -> b h t d",
    h=n_head)``. ``merge_heads``: (B, H, T, D) -> (B, T, C), the inverse, heads side by side
    again. ``merge_heads(split_heads(x, H))`` gives back ``x``.
    """
    cases = [((1, 1, 4), 1), ((2, 3, 8), 2), ((2, 5, 12), 3), ((1, 4, 6), 6)]
    for (B, T, C), H in cases:
        x = torch.arange(B * T * C, dtype=torch.float32).reshape(B, T, C)
        D = C // H
        example = f"x of shape {(B, T, C)}, n_head={H}"
        got = call(split_heads, x.clone(), H)
        expect_type(got, torch.Tensor, "split_heads(x, n_head)", example)
        expect_shape(got, (B, H, T, D), "split_heads(x, n_head) -> (B, H, T, D)", example)
        expected = _split(x, H)
        if not torch.equal(got, expected):
            if torch.equal(got, x.reshape(B, H, T, D)):
                fail(f"split_heads reshaped x straight to (B, H, T, D) ({example}): that mixes "
                     "positions with channels. Split C into (H, D) first, then move H before "
                     "T: rearrange(x, 'b t (h d) -> b h t d', h=n_head).")
            if torch.equal(got, x.view(B, T, D, H).permute(0, 3, 1, 2)):
                fail(f"head 0 got channels 0, {H}, {2 * H}, ... ({example}); it should get the "
                     f"block of channels 0 .. {D - 1}. Write the pattern as '(h d)', not '(d h)'.")
            fail(f"split_heads(x, {H})[b, h, t] should be x[b, t, h*D:(h+1)*D] ({example}); "
                 f"for b=0, h=0 expected rows {expected[0, 0].tolist()[:3]}..., got "
                 f"{got[0, 0].tolist()[:3]}...")
        y = torch.randn(B, H, T, D)
        got_m = call(merge_heads, y.clone())
        m_example = f"a tensor of shape {(B, H, T, D)}"
        expect_type(got_m, torch.Tensor, "merge_heads(x)", m_example)
        expect_shape(got_m, (B, T, C), "merge_heads(x) -> (B, T, C)", m_example)
        if not torch.equal(got_m, _merge(y)):
            if torch.equal(got_m, y.reshape(B, T, C)):
                fail(f"merge_heads reshaped (B, H, T, D) straight to (B, T, C) ({m_example}): "
                     "that mixes positions of different heads. Move H next to D first: "
                     "rearrange(x, 'b h t d -> b t (h d)').")
            fail(f"merge_heads(x)[b, t] should be x[b, 0, t], x[b, 1, t], ... side by side "
                 f"({m_example}), which undoes split_heads.")
        back = call(merge_heads, call(split_heads, x.clone(), H))
        expect_true(torch.equal(back, x), f"merge_heads(split_heads(x, {H})) should give back x "
                    f"({example}).")
    return f"split and merge agree with rearrange on {len(cases)} shapes, and undo each other"
