"""Lesson 04 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import math

import pytest
import torch

from gptlab.checks.positional import check_apply_rope, check_rope_score, check_sinusoidal
from gptlab.positional import apply_rotary, rotary_tables, rotate_half


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 4.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 4.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


def expect_not_done(capsys, checker):
    assert not checker(stub)
    assert "not done yet" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 4.1


def sinusoidal(T, C, base=10000.0, swap=False, halves=False, exponent=2.0, sign=-1):
    """The learner's vectorised table, with switches for the usual mistakes."""
    pos = torch.arange(T, dtype=torch.float32)[:, None]  # (T, 1)
    i = torch.arange(C // 2, dtype=torch.float32)  # (C/2,)
    angles = pos * base ** (sign * exponent * i / C)  # (T, C/2)
    s, c = torch.sin(angles), torch.cos(angles)
    if swap:
        s, c = c, s
    if halves:
        return torch.cat((s, c), dim=-1)
    pe = torch.zeros(T, C)
    pe[:, 0::2], pe[:, 1::2] = s, c
    return pe


def sinusoidal_loops(T, C):
    pe = torch.zeros(T, C)
    for pos in range(T):
        for i in range(C // 2):
            pe[pos, 2 * i] = math.sin(pos / 10000 ** (2 * i / C))
            pe[pos, 2 * i + 1] = math.cos(pos / 10000 ** (2 * i / C))
    return pe


def test_check_sinusoidal(capsys):
    assert check_sinusoidal(sinusoidal)
    assert check_sinusoidal(sinusoidal_loops)
    assert check_sinusoidal(lambda T, C: sinusoidal(T, C).double())  # float64 is fine
    assert "✅ Exercise 4.1 passed" in capsys.readouterr().out
    expect_not_done(capsys, check_sinusoidal)
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C, swap=True),
                   "sin and cos are swapped")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C, halves=True),
                   "first half of the columns")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C, exponent=1.0),
                   "not i / C")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C, sign=1),
                   "a division")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C, base=1000.0),
                   "row 0 is right but later positions are not", "column")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C).T,
                   "expected shape (1, 2), got shape (2, 1)")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C).long(),
                   "must be a float tensor")
    expect_failure(capsys, check_sinusoidal, lambda T, C: sinusoidal(T, C).tolist(),
                   "expected a torch.Tensor")


# ----------------------------------------------------------------------------- 4.2


def apply_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def apply_rope_loops(x, cos, sin):
    out = torch.empty_like(x)
    half = x.shape[-1] // 2
    for j in range(half):
        a, b = x[..., j], x[..., j + half]
        c, s = cos[:, j], sin[:, j]
        out[..., j], out[..., j + half] = a * c - b * s, b * c + a * s
    return out


def test_check_apply_rope(capsys):
    assert check_apply_rope(apply_rope)
    assert check_apply_rope(apply_rope_loops)
    assert check_apply_rope(apply_rotary)
    assert "✅ Exercise 4.2 passed" in capsys.readouterr().out
    expect_not_done(capsys, check_apply_rope)
    expect_failure(capsys, check_apply_rope, lambda x, c, s: x * c - rotate_half(x) * s,
                   "rotates the wrong way")

    def interleaved(x, cos, sin):
        D = x.shape[-1]
        c, s = cos[:, : D // 2], sin[:, : D // 2]
        out = torch.empty_like(x)
        out[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
        out[..., 1::2] = x[..., 1::2] * c + x[..., 0::2] * s
        return out

    expect_failure(capsys, check_apply_rope, interleaved, "interleaved layout", "j + D/2")
    expect_failure(capsys, check_apply_rope, lambda x, c, s: x * c + x * s,
                   "multiplies sin by x itself")
    expect_failure(capsys, check_apply_rope, lambda x, c, s: x.clone(), "unchanged")
    expect_failure(capsys, check_apply_rope, lambda x, c, s: apply_rope(x, c, s) * 2,
                   "values differ")

    def in_place(x, cos, sin):
        r = rotate_half(x)
        x.mul_(cos)
        return x.add_(r * sin)

    expect_failure(capsys, check_apply_rope, in_place, "changed its input x in place")
    expect_failure(capsys, check_apply_rope, lambda x, c, s: apply_rope(x, c, s)[..., 0],
                   "same shape as x")


# ----------------------------------------------------------------------------- 4.3


def rope_score(q, k, m, n):
    cos, sin = rotary_tables(q.shape[-1], max(m, n) + 1)
    return float(apply_rotary(q, cos[m], sin[m]) @ apply_rotary(k, cos[n], sin[n]))


def test_check_rope_score(capsys):
    assert check_rope_score(rope_score)
    assert check_rope_score(lambda q, k, m, n: torch.tensor(rope_score(q, k, m, n)))  # 0-dim
    assert "✅ Exercise 4.3 passed" in capsys.readouterr().out
    expect_not_done(capsys, check_rope_score)
    expect_failure(capsys, check_rope_score, lambda q, k, m, n: rope_score(q, k, n, m),
                   "positions are swapped")
    expect_failure(capsys, check_rope_score,
                   lambda q, k, m, n: rope_score(q, k, m, n) / math.sqrt(q.shape[-1]),
                   "divided by sqrt(D)")
    expect_failure(capsys, check_rope_score, lambda q, k, m, n: float(q @ k),
                   "is just q @ k", "without rotation")
    expect_failure(capsys, check_rope_score, lambda q, k, m, n: rope_score(q, k, m, n) + 1.0,
                   "must equal q @ k")

    def interleaved(q, k, m, n):
        D = q.shape[-1]
        cos, sin = rotary_tables(D, max(m, n) + 1)

        def rot(x, p):
            c, s = cos[p, : D // 2], sin[p, : D // 2]
            out = torch.empty_like(x)
            out[0::2] = x[0::2] * c - x[1::2] * s
            out[1::2] = x[1::2] * c + x[0::2] * s
            return out

        return float(rot(q, m) @ rot(k, n))

    expect_failure(capsys, check_rope_score, interleaved, "pairs are interleaved")

    def both_rotated_to_m(q, k, m, n):
        return rope_score(q, k, m, m) + 0.0 * n

    expect_failure(capsys, check_rope_score, both_rotated_to_m, "is just q @ k")

    def only_q_rotated(q, k, m, n):
        cos, sin = rotary_tables(q.shape[-1], m + 1)
        return float(apply_rotary(q, cos[m], sin[m]) @ k)

    expect_failure(capsys, check_rope_score, only_q_rotated, "only n - m matters")

    def elementwise(q, k, m, n):
        cos, sin = rotary_tables(q.shape[-1], max(m, n) + 1)
        return apply_rotary(q, cos[m], sin[m]) * apply_rotary(k, cos[n], sin[n])

    expect_failure(capsys, check_rope_score, elementwise, "should return one number")
