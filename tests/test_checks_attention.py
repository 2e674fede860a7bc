"""Lesson 05 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import math

import pytest
import torch
from einops import rearrange

from gptlab.attention import attention_weights as lib_attention_weights
from gptlab.checks.attention import (
    check_attention_weights,
    check_causal_average,
    check_split_heads,
)


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 5.0: stub")


def expect_failure(capsys, checker, *fns_and_words):
    """``checker(*fns)`` raises an AssertionError whose message (and the printed text)
    contains every word."""
    fns = [f for f in fns_and_words if callable(f)]
    words = [w for w in fns_and_words if isinstance(w, str)]
    with pytest.raises(AssertionError) as err:
        checker(*fns)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 5.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 5.1


def causal_average(x):
    T = x.shape[1]
    wei = torch.tril(torch.ones(T, T))
    wei = wei / wei.sum(dim=1, keepdim=True)
    return wei @ x


def test_causal_average_passes_reference_and_loop(capsys):
    assert check_causal_average(causal_average)
    assert "✅ Exercise 5.1 passed" in capsys.readouterr().out

    def loop(x):
        out = torch.zeros_like(x)
        for t in range(x.shape[1]):
            out[:, t] = x[:, : t + 1].mean(1)
        return out

    assert check_causal_average(loop)
    # the softmax way of lesson 05 is also right
    def softmax_way(x):
        T = x.shape[1]
        tril = torch.tril(torch.ones(T, T))
        wei = torch.zeros(T, T).masked_fill(tril == 0, float("-inf")).softmax(dim=-1)
        return wei @ x

    assert check_causal_average(softmax_way)


def test_causal_average_stub(capsys):
    assert not check_causal_average(stub)
    assert "not done yet" in capsys.readouterr().out


def test_causal_average_wrong_answers(capsys):
    def no_mask(x):
        return x.mean(1, keepdim=True).expand_as(x).clone()

    def summed(x):
        return torch.tril(torch.ones(x.shape[1], x.shape[1])) @ x

    def by_column(x):
        tril = torch.tril(torch.ones(x.shape[1], x.shape[1]))
        return tril / tril.sum(0, keepdim=True) @ x

    def future(x):
        triu = torch.triu(torch.ones(x.shape[1], x.shape[1]))
        return triu / triu.sum(1, keepdim=True) @ x

    def in_place(x):
        x.copy_(causal_average(x))
        return x

    expect_failure(capsys, check_causal_average, no_mask, "the future included", "torch.tril")
    expect_failure(capsys, check_causal_average, summed, "*sum*", "keepdim=True")
    expect_failure(capsys, check_causal_average, by_column, "column by column")
    expect_failure(capsys, check_causal_average, future, "not torch.triu")
    expect_failure(capsys, check_causal_average, in_place, "in place")
    expect_failure(capsys, check_causal_average, lambda x: x[:, -1], "expected shape")
    expect_failure(capsys, check_causal_average, lambda x: causal_average(x) + 0.01,
                   "values differ")


# ----------------------------------------------------------------------------- 5.2


def good_weights(q, k):
    T, D = q.shape[-2], q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)
    tril = torch.tril(torch.ones(T, T))
    return torch.softmax(scores.masked_fill(tril == 0, float("-inf")), dim=-1)


def variant(scale=None, fill=float("-inf"), mask="tril", dim=-1, zero_after=False):
    def fn(q, k):
        T, D = q.shape[-2], q.shape[-1]
        scores = q @ k.transpose(-2, -1) * (1 / math.sqrt(D) if scale is None else scale(D))
        ones = torch.ones(T, T)
        keep = {"tril": ones.tril(), "triu": ones.triu(), "none": ones,
                "strict": ones.tril(-1)}[mask]
        if zero_after:
            return torch.softmax(scores, dim=-1) * keep
        return torch.softmax(scores.masked_fill(keep == 0, fill), dim=dim)

    return fn


def test_attention_weights_passes_reference_and_library(capsys):
    assert check_attention_weights(good_weights)
    assert "✅ Exercise 5.2 passed" in capsys.readouterr().out
    assert check_attention_weights(lib_attention_weights)


def test_attention_weights_stub(capsys):
    assert not check_attention_weights(stub)
    assert "not done yet" in capsys.readouterr().out


def test_attention_weights_wrong_answers(capsys):
    expect_failure(capsys, check_attention_weights, variant(scale=lambda D: 1.0),
                   "not scaled", "sqrt(D)")
    expect_failure(capsys, check_attention_weights, variant(scale=lambda D: 1.0 / D),
                   "divided by D")
    expect_failure(capsys, check_attention_weights, variant(fill=0.0), "exp(0) = 1")
    expect_failure(capsys, check_attention_weights, variant(mask="triu"), "upper triangle")
    expect_failure(capsys, check_attention_weights, variant(mask="none"), "keys after t")
    expect_failure(capsys, check_attention_weights, variant(mask="strict"), "NaN")
    expect_failure(capsys, check_attention_weights, variant(dim=-2), "sum to 1")
    expect_failure(capsys, check_attention_weights, variant(zero_after=True), "*before*")
    expect_failure(capsys, check_attention_weights, lambda q, k: q @ k.transpose(-2, -1),
                   "sum to 1")
    expect_failure(capsys, check_attention_weights, lambda q, k: good_weights(q, k * 1.1),
                   "values differ")
    expect_failure(capsys, check_attention_weights, lambda q, k: good_weights(q, k)[..., :1],
                   "expected shape")


def test_attention_weights_learner_error_is_reraised(capsys):
    def only_2d(q, k):
        if q.dim() != 2:
            raise RuntimeError("only 2-D please")
        return good_weights(q, k)

    with pytest.raises(RuntimeError, match="only 2-D"):
        check_attention_weights(only_2d)
    assert "your code raised RuntimeError" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 5.3


def split_heads(x, n_head):
    return rearrange(x, "b t (h d) -> b h t d", h=n_head)


def merge_heads(x):
    return rearrange(x, "b h t d -> b t (h d)")


def test_split_heads_passes_reference(capsys):
    assert check_split_heads(split_heads, merge_heads)
    assert "✅ Exercise 5.3 passed" in capsys.readouterr().out

    def view_split(x, n_head):
        B, T, C = x.shape
        return x.view(B, T, n_head, C // n_head).transpose(1, 2)

    def view_merge(x):
        B, H, T, D = x.shape
        return x.transpose(1, 2).contiguous().view(B, T, H * D)

    assert check_split_heads(view_split, view_merge)


def test_split_heads_stub(capsys):
    assert not check_split_heads(stub, merge_heads)
    assert "not done yet" in capsys.readouterr().out
    assert not check_split_heads(split_heads, stub)
    assert "not done yet" in capsys.readouterr().out


def test_split_heads_wrong_answers(capsys):
    def straight(x, n_head):
        B, T, C = x.shape
        return x.reshape(B, n_head, T, C // n_head)

    def interleaved(x, n_head):
        return rearrange(x, "b t (d h) -> b h t d", h=n_head)

    def straight_merge(x):
        B, H, T, D = x.shape
        return x.reshape(B, T, H * D)

    def wrong_merge(x):
        return rearrange(x, "b h t d -> b t (d h)")

    expect_failure(capsys, check_split_heads, straight, merge_heads, "mixes positions")
    expect_failure(capsys, check_split_heads, interleaved, merge_heads, "'(h d)', not '(d h)'")
    expect_failure(capsys, check_split_heads, split_heads, straight_merge, "Move H next to D")
    expect_failure(capsys, check_split_heads, split_heads, wrong_merge, "side by side")
    expect_failure(capsys, check_split_heads, lambda x, h: x, merge_heads, "expected shape")
