"""Checkers for lesson 04 (positional encoding): the sinusoidal table, RoPE, rotary scores.

The expected answers come from :mod:`gptlab.positional` (split-halves RoPE, as in GPT-NeoX
and Hugging Face Llama), the library the rest of the course imports. The near misses the
checkers recognise (sin and cos swapped, pairs interleaved instead of split in halves, a
rotation the wrong way, ...) are computed here so that the message can name them.
"""

from __future__ import annotations

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
from gptlab.positional import apply_rotary, rotary_tables, rotate_half, sinusoidal_table

__all__ = ["check_apply_rope", "check_rope_score", "check_sinusoidal"]

_ATOL, _RTOL = 1e-4, 1e-4


def _close(a: Tensor, b: Tensor, atol: float = _ATOL) -> bool:
    return a.shape == b.shape and torch.allclose(
        a.detach().cpu().double(), b.detach().cpu().double(), atol=atol, rtol=_RTOL)


# ----------------------------------------------------------------------------- 4.1


def _sin_variant(T: int, C: int, *, exponent: str = "2i/C", layout: str = "interleaved",
                 swap: bool = False) -> Tensor:
    """Sinusoidal tables with a known mistake, for messages. exponent: "2i/C" (right),
    "i/C" (pair index without the 2), "-2i/C" (frequency and wavelength confused)."""
    pos = torch.arange(T, dtype=torch.float64)[:, None]  # (T, 1)
    i = torch.arange(C // 2, dtype=torch.float64)  # (C/2,) pair index
    power = {"2i/C": 2 * i / C, "i/C": i / C, "-2i/C": -2 * i / C}[exponent]
    angles = pos / 10000.0 ** power  # (T, C/2)
    first, second = (torch.cos(angles), torch.sin(angles)) if swap else (
        torch.sin(angles), torch.cos(angles))
    if layout == "halves":
        return torch.cat((first, second), dim=-1).float()
    table = torch.empty(T, C, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = first, second
    return table.float()


_SIN_CASES = [(1, 2), (2, 4), (6, 8), (50, 16), (128, 64), (3, 6)]
_SIN_MISTAKES: list[tuple[dict, str]] = [
    ({"swap": True},
     ("sin and cos are swapped: sin goes in the even columns (0, 2, 4, ...) and cos in the "
      "odd ones (1, 3, 5, ...).")),
    ({"layout": "halves"},
     ("you put all the sines in the first half of the columns and all the cosines in the "
      "second half; this table interleaves them: pe[:, 0::2] = sin, pe[:, 1::2] = cos.")),
    ({"exponent": "i/C"},
     ("the frequencies are off: the exponent is 2i / C where i counts the (sin, cos) pairs, "
      "i.e. the even column index 0, 2, 4, ... divided by C (torch.arange(0, C, 2) / C), "
      "not i / C.")),
    ({"exponent": "-2i/C"},
     ("the angle is pos / 10000 ** (2i / C), a division: you multiplied by "
      "10000 ** (2i / C), so the slow pairs spin fastest.")),
]


@exercise("4.1", "the sinusoidal position table")
def check_sinusoidal(fn):
    """Check ``sinusoidal(T: int, C: int) -> Tensor``.

    Returns the (T, C) float table of "Attention Is All You Need":
    ``PE[pos, 2i] = sin(pos / 10000 ** (2i / C))`` and ``PE[pos, 2i+1] = cos(...)`` with the
    same angle, i.e. sin in the even columns, cos in the odd ones. Row 0 is
    [0, 1, 0, 1, ...]. Compared with ``gptlab.positional.sinusoidal_table`` for several
    sizes (C even), within 1e-4.
    """
    for T, C in _SIN_CASES:
        example = f"sinusoidal(T={T}, C={C})"
        got = call(fn, T, C)
        expect_type(got, Tensor, "the table", example)
        expect_shape(got, (T, C), "the table (one row per position, one column per dimension)",
                     example)
        expect_true(got.dtype.is_floating_point,
                    f"{example} returned dtype {got.dtype}; the table holds sines and cosines, "
                    "so it must be a float tensor (torch.arange(T) gives integers: add "
                    "dtype=torch.float32, or call .float()).")
        expected = sinusoidal_table(T, C)
        if _close(got, expected):
            continue
        for kwargs, hint in _SIN_MISTAKES:
            if _close(got, _sin_variant(T, C, **kwargs)):
                fail(f"{example}: {hint}")
        if T > 1 and _close(got[0], expected[0]) and not _close(got[1:], expected[1:]):
            bad = int((~torch.isclose(got.double(), expected.double(), atol=_ATOL,
                                      rtol=_RTOL)).nonzero()[0, 1])
            fail(f"{example}: row 0 is right but later positions are not, first in column "
                 f"{bad}. Check the angle pos * omega_i with omega_i = 1 / 10000 ** (2i / C), "
                 f"where 2i is the even column index of the pair.")
        expect_close(got, expected, atol=_ATOL, rtol=_RTOL, what="the table", example=example)
    return f"matches gptlab.positional.sinusoidal_table for {len(_SIN_CASES)} sizes"


# ----------------------------------------------------------------------------- 4.2


def _rope_interleaved(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """RoPE that pairs (2j, 2j+1) (the paper's layout), with the split-halves tables."""
    D = x.shape[-1]
    c, s = cos[..., : D // 2], sin[..., : D // 2]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * c - x2 * s
    out[..., 1::2] = x2 * c + x1 * s
    return out


def _rope_cases() -> list[tuple[Tensor, Tensor, Tensor, str]]:
    g = torch.Generator().manual_seed(4)
    cases = []
    for shape, start in (((5, 8), 0), ((2, 3, 7, 4), 0), ((1, 2, 6, 16), 9), ((1, 1, 1, 2), 3)):
        T, D = shape[-2], shape[-1]
        cos, sin = rotary_tables(D, start + T)
        cases.append((torch.randn(*shape, generator=g), cos[start:], sin[start:],
                      f"x of shape {shape}, positions {start}..{start + T - 1}"))
    return cases


@exercise("4.2", "rotate query/key pairs (RoPE)")
def check_apply_rope(fn):
    """Check ``apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor``.

    ``x`` is (..., T, D), ``cos`` and ``sin`` are (T, D) split-halves tables (from
    ``gptlab.positional.rotary_tables``). The result has x's shape: each pair
    (x[j], x[j + D/2]) at row t rotated by the angle in cos[t, j], sin[t, j], i.e.
    ``x * cos + rotate_half(x) * sin`` with ``rotate_half(x) = cat(-x2, x1)``. ``x`` itself is
    not modified. Compared with ``gptlab.positional.apply_rotary`` on 4 shapes.
    """
    cases = _rope_cases()
    for x, cos, sin, example in cases:
        before = x.clone()
        got = call(fn, x, cos.clone(), sin.clone())
        expect_type(got, Tensor, "apply_rope(x, cos, sin)", example)
        expect_true(torch.equal(x, before), f"apply_rope changed its input x in place ({example});"
                    " build a new tensor instead (avoid x[...] = ..., x *= ... and similar).")
        expect_shape(got, x.shape, "apply_rope(x, cos, sin) (same shape as x)", example)
        expected = apply_rotary(x, cos, sin)
        if _close(got, expected):
            continue
        D = x.shape[-1]
        if _close(got, x * cos - rotate_half(x) * sin):
            fail(f"apply_rope rotates the wrong way ({example}): rotate_half(x) is (-x2, x1), "
                 "with the minus sign on the SECOND half, so that x1 <- x1 cos - x2 sin and "
                 "x2 <- x2 cos + x1 sin.")
        if D > 2 and _close(got, _rope_interleaved(x, cos, sin)):
            fail(f"apply_rope pairs neighbouring dimensions (2j, 2j+1) ({example}): that is the "
                 "paper's interleaved layout. gptlab (like GPT-NeoX and Llama) pairs dimension "
                 "j with j + D/2: split x into halves x1 = x[..., :D//2], x2 = x[..., D//2:].")
        if _close(got, x * cos + x * sin):
            fail(f"apply_rope multiplies sin by x itself ({example}); it must multiply "
                 "rotate_half(x) = (-x2, x1), the partner of each dimension in its pair.")
        if _close(got, x):
            fail(f"apply_rope returned x unchanged ({example}); only position 0 has angle 0.")
        expect_close(got, expected, atol=_ATOL, rtol=_RTOL, what="apply_rope(x, cos, sin)",
                     example=example)
    return f"matches gptlab.positional.apply_rotary on {len(cases)} shapes"


# ----------------------------------------------------------------------------- 4.3


def _score(q: Tensor, k: Tensor, m: int, n: int, interleaved: bool = False) -> float:
    D = q.shape[-1]
    cos, sin = rotary_tables(D, max(m, n) + 1)
    rope = _rope_interleaved if interleaved else apply_rotary
    return float(rope(q, cos[m], sin[m]) @ rope(k, cos[n], sin[n]))


_SCORE_PAIRS = [(0, 0), (3, 1), (1, 3), (5, 5), (10, 2), (0, 63), (100, 37)]


@exercise("4.3", "rotary scores depend only on the offset")
def check_rope_score(fn):
    """Check ``rope_score(q: Tensor, k: Tensor, m: int, n: int) -> float``.

    ``q`` and ``k`` are (D,) vectors; the function rotates q as a query at position m and k as
    a key at position n (split-halves RoPE with base 10000, as gptlab) and returns their dot
    product (a float or a 0-dim tensor; no 1/sqrt(D) scaling). Checked on several (m, n)
    pairs against gptlab's rotation, and for the property itself:
    ``rope_score(q, k, m, n) == rope_score(q, k, m + s, n + s)``.
    """
    g = torch.Generator().manual_seed(43)
    tried = 0
    for D in (2, 8, 16):
        q, k = torch.randn(D, generator=g), torch.randn(D, generator=g)
        for m, n in _SCORE_PAIRS:
            example = f"q, k of size {D}, m={m}, n={n}"
            got = call(fn, q.clone(), k.clone(), m, n)
            if isinstance(got, Tensor):
                expect_true(got.numel() == 1, f"rope_score should return one number, got a "
                            f"tensor of shape {tuple(got.shape)} for {example}; the dot "
                            "product of two (D,) vectors is a single number (q_m @ k_n).")
                got = got.item()
            expect_type(got, (float, int), "rope_score(q, k, m, n)", example)
            expected = _score(q, k, m, n)
            tried += 1
            if abs(got - expected) <= _ATOL + _RTOL * abs(expected):
                continue
            if abs(got - _score(q, k, n, m)) <= _ATOL + _RTOL * abs(expected):
                fail(f"the positions are swapped ({example}): rotate q to position m and k to "
                     f"position n; got the value for m={n}, n={m}.")
            if abs(got * D**0.5 - expected) <= _ATOL + _RTOL * abs(expected):
                fail(f"rope_score divided by sqrt(D) ({example}); return the plain dot product "
                     "(attention does the scaling later).")
            if D > 2 and abs(got - _score(q, k, m, n, interleaved=True)) <= _ATOL:
                fail(f"the pairs are interleaved (2j, 2j+1) ({example}); gptlab pairs dimension "
                     "j with j + D/2. Use gptlab.positional.rotary_tables and apply_rotary.")
            if abs(got - float(q @ k)) <= _ATOL + _RTOL * abs(got):
                fail(f"rope_score(q, k, {m}, {n}) = {got:.4f} is just q @ k, the score "
                     f"without rotation (or with q and k turned by the same angle). "
                     f"Rotate q by the angles of position m and k by those of position n "
                     f"(rows m and n of rotary_tables), then take the dot product.")
            if m == n == 0:
                fail(f"at m = n = 0 nothing is rotated, so rope_score must equal q @ k = "
                     f"{float(q @ k):.4f}; got {got:.4f} ({example}).")
            shifted = call(fn, q.clone(), k.clone(), m + 7, n + 7)
            shifted = shifted.item() if isinstance(shifted, Tensor) else shifted
            if abs(shifted - got) > _ATOL + _RTOL * abs(got):
                fail(f"rope_score(q, k, {m}, {n}) = {got:.4f} but rope_score(q, k, {m + 7}, "
                     f"{n + 7}) = {shifted:.4f}: with RoPE both must be the same, only n - m "
                     "matters. Rotate q by its own position m and k by its own position n.")
            expect_close(got, expected, atol=_ATOL, rtol=_RTOL, what="rope_score(q, k, m, n)",
                         example=example)
    # the property the lesson is about, on the learner's own function
    q, k = torch.randn(8, generator=g), torch.randn(8, generator=g)
    first = call(fn, q, k, 2, 9)
    for s in (1, 10, 50):
        expect_close(call(fn, q, k, 2 + s, 9 + s), float(first), atol=_ATOL, rtol=_RTOL,
                     what=f"rope_score(q, k, {2 + s}, {9 + s}) compared with rope_score(q, k, 2, 9)")
    return f"{tried} scores match, and shifting both positions leaves the score unchanged"
