"""Tests for gptlab.attention: pure functions, CausalSelfAttention, KV cache."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gptlab.attention import (
    CausalSelfAttention,
    KVCache,
    attention_weights,
    causal_mask,
    fused_attention,
    naive_attention,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}


def make_pair(n_embd, n_head, block_size=32, **kw):
    """The same weights under both impls."""
    torch.manual_seed(0)
    naive = CausalSelfAttention(n_embd, n_head, block_size, impl="naive", **kw).eval()
    sdpa = CausalSelfAttention(n_embd, n_head, block_size, impl="sdpa", **kw).eval()
    sdpa.load_state_dict(naive.state_dict())
    return naive, sdpa


# ---------------------------------------------------------------------------- pure functions


def test_causal_mask():
    m = causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert m.tolist() == [
        [True, False, False, False],
        [True, True, False, False],
        [True, True, True, False],
        [True, True, True, True],
    ]
    # 2 new queries behind 3 cached keys: they are positions 3 and 4 of 5
    assert causal_mask(2, n_keys=5).tolist() == [
        [True, True, True, True, False],
        [True, True, True, True, True],
    ]
    with pytest.raises(ValueError, match="n_keys"):
        causal_mask(3, n_keys=2)


def test_attention_weights_by_hand():
    torch.manual_seed(0)
    q, k = torch.randn(2, 5, 4), torch.randn(2, 5, 4)
    w = attention_weights(q, k)
    assert w.shape == (2, 5, 5)
    for b in range(2):
        for t in range(5):
            scores = [float(q[b, t] @ k[b, s]) / math.sqrt(4) for s in range(t + 1)]
            z = sum(math.exp(x) for x in scores)
            expected = [math.exp(x) / z for x in scores] + [0.0] * (4 - t)
            assert w[b, t].tolist() == pytest.approx(expected, abs=1e-6)
    full = attention_weights(q, k, causal=False)
    assert (full > 0).all()
    assert_close(full.sum(-1), torch.ones(2, 5))


@pytest.mark.parametrize("T, S", [(6, 6), (1, 6), (3, 7)])
@pytest.mark.parametrize("causal", [True, False])
def test_naive_equals_fused(T, S, causal):
    torch.manual_seed(T * 10 + S)
    q = torch.randn(2, 3, T, 8)
    k, v = torch.randn(2, 3, S, 8), torch.randn(2, 3, S, 8)
    assert_close(naive_attention(q, k, v, causal), fused_attention(q, k, v, causal), **TOL)


def test_naive_attention_equals_loop():
    """The averaging-loop picture of lesson 05: y_t = sum_s w[t, s] v_s."""
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4)
    w = attention_weights(q, k)
    loop = torch.stack([sum(w[t, s] * v[s] for s in range(t + 1)) for t in range(3)])
    assert_close(naive_attention(q, k, v), loop, **TOL)


# ---------------------------------------------------------------------------- the layer


def test_layer_names_and_state_dict():
    attn = CausalSelfAttention(16, 4, 8, rotary=True)
    assert set(attn.state_dict()) == {
        "c_attn.weight",
        "c_attn.bias",
        "c_proj.weight",
        "c_proj.bias",
    }
    assert attn.c_attn.weight.shape == (48, 16)  # nn.Linear: (out, in); output is [q | k | v]
    assert attn.c_proj.weight.shape == (16, 16)
    assert isinstance(attn.attn_dropout, torch.nn.Dropout)
    assert isinstance(attn.resid_dropout, torch.nn.Dropout)
    no_bias = CausalSelfAttention(16, 4, 8, bias=False)
    assert set(no_bias.state_dict()) == {"c_attn.weight", "c_proj.weight"}


def test_layer_equals_per_head_loop():
    """The fused c_attn split [q | k | v] and the head layout, checked one head at a time."""
    torch.manual_seed(0)
    C, H, T = 12, 3, 5
    D = C // H
    attn = CausalSelfAttention(C, H, 8, impl="sdpa").eval()
    x = torch.randn(2, T, C)
    qkv = x @ attn.c_attn.weight.T + attn.c_attn.bias
    q, k, v = qkv[..., :C], qkv[..., C : 2 * C], qkv[..., 2 * C :]
    heads = []
    for h in range(H):
        sl = slice(h * D, (h + 1) * D)
        heads.append(naive_attention(q[..., sl], k[..., sl], v[..., sl]))
    expected = torch.cat(heads, dim=-1) @ attn.c_proj.weight.T + attn.c_proj.bias
    assert_close(attn(x), expected, **TOL)


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize(
    "B, T, n_embd, n_head",
    [(1, 1, 8, 1), (2, 7, 16, 4), (3, 16, 32, 2), (2, 32, 48, 6), (1, 5, 64, 8)],
)
def test_naive_equals_sdpa(B, T, n_embd, n_head, rotary):
    naive, sdpa = make_pair(n_embd, n_head, dropout=0.2, rotary=rotary)  # dropout off in eval
    x = torch.randn(B, T, n_embd)
    y1, y2 = naive(x), sdpa(x)
    assert y1.shape == (B, T, n_embd)
    assert_close(y1, y2, **TOL)


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("impl", ["naive", "sdpa"])
def test_causality_by_perturbation(impl, rotary):
    torch.manual_seed(0)
    attn = CausalSelfAttention(16, 4, 16, impl=impl, rotary=rotary).eval()
    x = torch.randn(2, 10, 16)
    y = attn(x)
    for t in (0, 4, 9):
        x2 = x.clone()
        x2[:, t] += torch.randn(2, 16)
        y2 = attn(x2)
        assert_close(y2[:, :t], y[:, :t], atol=1e-6, rtol=0)  # the past is untouched
        assert not torch.allclose(y2[:, t], y[:, t])  # token t itself does change


@pytest.mark.parametrize("rotary", [False, True])
def test_return_weights(rotary):
    torch.manual_seed(0)
    attn = CausalSelfAttention(16, 4, 16, impl="sdpa", dropout=0.1, rotary=rotary).eval()
    x = torch.randn(2, 9, 16)
    y, w = attn(x, return_weights=True)
    assert w.shape == (2, 4, 9, 9)
    assert_close(w.sum(-1), torch.ones(2, 4, 9), **TOL)
    upper = torch.triu(torch.ones(9, 9, dtype=torch.bool), diagonal=1)
    assert (w[..., upper] == 0).all()
    assert (w[..., ~upper] > 0).all()
    assert_close(y, attn(x), **TOL)  # same output as the fused path


def test_training_mode_dropout_runs_and_backprops():
    torch.manual_seed(0)
    for impl in ("naive", "sdpa"):
        attn = CausalSelfAttention(16, 2, 8, dropout=0.5, impl=impl).train()
        x = torch.randn(2, 8, 16, requires_grad=True)
        y = attn(x)
        assert y.shape == (2, 8, 16)
        y.sum().backward()
        assert x.grad is not None and attn.c_attn.weight.grad is not None
    # in training mode dropout makes two calls differ; in eval they agree
    attn = CausalSelfAttention(16, 2, 8, dropout=0.5).train()
    x = torch.randn(2, 8, 16)
    assert not torch.allclose(attn(x), attn(x))
    attn.eval()
    assert torch.equal(attn(x), attn(x))


# ---------------------------------------------------------------------------- KV cache


@pytest.mark.parametrize("rotary", [False, True])
@pytest.mark.parametrize("impl", ["naive", "sdpa"])
@pytest.mark.parametrize("prefill", [1, 4])
def test_kv_cache_incremental_equals_full(impl, rotary, prefill):
    torch.manual_seed(0)
    attn = CausalSelfAttention(16, 4, 12, impl=impl, rotary=rotary).eval()
    x = torch.randn(2, 12, 16)  # the whole block: positions up to block_size - 1
    full = attn(x)
    cache = KVCache()
    outs = [attn(x[:, :prefill], kv_cache=cache)]
    assert cache.pos == prefill
    t = prefill
    while t < 12:
        step = 1 if t % 3 else 2  # mix single tokens and small chunks
        outs.append(attn(x[:, t : t + step], kv_cache=cache))
        t += step
    assert cache.pos == 12
    assert cache.k is not None and cache.k.shape == (2, 4, 12, 4)
    assert_close(torch.cat(outs, dim=1), full, **TOL)


def test_kv_cache_weights_and_overflow():
    torch.manual_seed(0)
    attn = CausalSelfAttention(8, 2, 6).eval()
    x = torch.randn(1, 6, 8)
    _, w_full = attn(x, return_weights=True)
    cache = KVCache()
    attn(x[:, :4], kv_cache=cache)
    _, w = attn(x[:, 4:5], kv_cache=cache, return_weights=True)
    assert w.shape == (1, 2, 1, 5)
    assert_close(w[..., 0, :], w_full[..., 4, :5], **TOL)
    attn(x[:, 5:6], kv_cache=cache)
    with pytest.raises(ValueError, match=r"start_pos = 6.*block_size = 6"):
        attn(x[:, :1], kv_cache=cache)
    cache.reset()
    assert cache.pos == 0


# ---------------------------------------------------------------------------- bad input


def test_n_embd_not_divisible():
    with pytest.raises(ValueError, match=r"n_embd \(10\).*n_head \(3\).*\[1, 2, 5, 10\]"):
        CausalSelfAttention(10, 3, 8)


def test_too_long_input():
    attn = CausalSelfAttention(8, 2, block_size=4)
    with pytest.raises(ValueError, match=r"T = 5.*block_size = 4.*raise block_size.*crop"):
        attn(torch.randn(1, 5, 8))


def test_bad_impl():
    with pytest.raises(ValueError, match=r"\['naive', 'sdpa'\].*'flash'"):
        CausalSelfAttention(8, 2, 4, impl="flash")


def test_rotary_odd_head_size():
    with pytest.raises(ValueError, match=r"even head size.*12 // 4 = 3.*\[1, 2, 3, 6\]"):
        CausalSelfAttention(12, 4, 8, rotary=True)
    CausalSelfAttention(12, 4, 8, rotary=False)  # odd head size is fine without rotary


def test_wrong_input_shape():
    attn = CausalSelfAttention(8, 2, 4)
    with pytest.raises(ValueError, match=r"n_embd=8.*\(1, 3, 6\)"):
        attn(torch.randn(1, 3, 6))
    with pytest.raises(ValueError, match="B, T, n_embd"):
        attn(torch.randn(3, 8))


def test_bad_dropout():
    with pytest.raises(ValueError, match="dropout"):
        CausalSelfAttention(8, 2, 4, dropout=1.0)
