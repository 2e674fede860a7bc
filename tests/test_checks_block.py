"""Lesson 06 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptlab.checks.block import check_block_forward, check_gelu_tanh, check_layer_norm
from gptlab.model import Block, GPTConfig


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 6.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 6.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 6.1


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    y = (x - mean) / torch.sqrt(var + eps) * weight
    return y if bias is None else y + bias


def ln_variant(unbiased=False, eps_outside=False, dim=-1, weight=True, bias=True, no_eps=False):
    def fn(x, w, b, eps=1e-5):
        dims = tuple(range(x.dim())) if dim is None else dim
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
        if no_eps:
            y = (x - mean) / var.sqrt()
        elif eps_outside:
            y = (x - mean) / (var.sqrt() + eps)
        else:
            y = (x - mean) / (var + eps).sqrt()
        if weight:
            y = y * w
        if bias and b is not None:
            y = y + b
        return y

    return fn


def test_layer_norm_passes_reference_and_torch(capsys):
    assert check_layer_norm(layer_norm)
    assert "✅ Exercise 6.1 passed" in capsys.readouterr().out
    assert check_layer_norm(lambda x, w, b, eps=1e-5: F.layer_norm(x, w.shape, w, b, eps))


def test_layer_norm_stub(capsys):
    assert not check_layer_norm(stub)
    assert "not done yet" in capsys.readouterr().out


def test_layer_norm_wrong_answers(capsys):
    expect_failure(capsys, check_layer_norm, ln_variant(unbiased=True), "C - 1", "unbiased=False")
    expect_failure(capsys, check_layer_norm, ln_variant(eps_outside=True), "outside the square root",
                   "sqrt(var + eps)")
    expect_failure(capsys, check_layer_norm, ln_variant(no_eps=True), "eps is missing")
    expect_failure(capsys, check_layer_norm, ln_variant(dim=None), "wrong dimension")
    expect_failure(capsys, check_layer_norm, ln_variant(dim=0), "wrong dimension")
    expect_failure(capsys, check_layer_norm, ln_variant(weight=False, bias=False),
                   "weight and bias were not applied")
    expect_failure(capsys, check_layer_norm, ln_variant(bias=False), "bias was not added")
    expect_failure(capsys, check_layer_norm, ln_variant(weight=False), "weight (gain)")
    expect_failure(capsys, check_layer_norm, lambda x, w, b, eps=1e-5: layer_norm(x, w, b) * 1.01,
                   "values differ")
    expect_failure(capsys, check_layer_norm,
                   lambda x, w, b, eps=1e-5: layer_norm(x, w, b, eps)[..., :1], "expected shape")

    def in_place(x, w, b, eps=1e-5):
        x.sub_(x.mean(dim=-1, keepdim=True))
        return layer_norm(x, w, b, eps)

    expect_failure(capsys, check_layer_norm, in_place, "in place")


def test_layer_norm_ignores_eps_is_caught(capsys):
    # a hard-coded eps of 1e-5 fails on the eps=0.1 case
    expect_failure(capsys, check_layer_norm, lambda x, w, b, eps=1e-5: layer_norm(x, w, b),
                   "eps argument was ignored", "eps=0.1")


def test_layer_norm_nan_is_explained(capsys):
    def nan_for_constant_rows(x, w, b, eps=1e-5):
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        y = layer_norm(x, w, b, eps)
        return torch.where(var == 0, torch.nan, y)

    expect_failure(capsys, check_layer_norm, nan_for_constant_rows, "NaN", "sqrt(var + eps)")


def test_layer_norm_crash_without_bias_is_reported(capsys):
    with pytest.raises(TypeError):
        check_layer_norm(lambda x, w, b, eps=1e-5: layer_norm(x, w, 0) + b)
    assert "your code raised TypeError" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 6.2


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def test_gelu_tanh_passes_reference_and_torch(capsys):
    assert check_gelu_tanh(gelu_tanh)
    assert "✅ Exercise 6.2 passed" in capsys.readouterr().out
    assert check_gelu_tanh(lambda x: F.gelu(x, approximate="tanh"))
    assert check_gelu_tanh(lambda x: torch.nn.GELU(approximate="tanh")(x))


def test_gelu_tanh_stub(capsys):
    assert not check_gelu_tanh(stub)
    assert "not done yet" in capsys.readouterr().out


def test_gelu_tanh_wrong_answers(capsys):
    expect_failure(capsys, check_gelu_tanh, F.gelu, "exact GELU", "erf")
    expect_failure(capsys, check_gelu_tanh, torch.relu, "ReLU")
    expect_failure(capsys, check_gelu_tanh, lambda x: 2 * gelu_tanh(x), "factor 0.5")
    expect_failure(capsys, check_gelu_tanh, lambda x: x * torch.sigmoid(1.702 * x),
                   "0.044715", "largest difference")
    expect_failure(capsys, check_gelu_tanh,
                   lambda x: 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**2))),
                   "the cube")
    expect_failure(capsys, check_gelu_tanh, lambda x: gelu_tanh(x).sum(), "expected shape")

    def in_place(x):
        return x.copy_(gelu_tanh(x))

    expect_failure(capsys, check_gelu_tanh, in_place, "in place")


# ----------------------------------------------------------------------------- 6.3


def block_forward(x, ln_1, attn, ln_2, mlp):
    x = x + attn(ln_1(x))
    return x + mlp(ln_2(x))


def test_block_forward_passes_reference_and_equals_gptlab_block(capsys):
    assert check_block_forward(block_forward)
    assert "✅ Exercise 6.3 passed" in capsys.readouterr().out
    # the reference is exactly gptlab.model.Block's forward
    block = Block(GPTConfig(vocab_size=10, block_size=8, n_layer=1, n_head=2, n_embd=8)).eval()
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        torch.testing.assert_close(block_forward(x, block.ln_1, block.attn, block.ln_2, block.mlp),
                                   block(x))


def test_block_forward_stub(capsys):
    assert not check_block_forward(stub)
    assert "not done yet" in capsys.readouterr().out


def post_norm(x, ln_1, attn, ln_2, mlp):
    x = ln_1(x + attn(x))
    return ln_2(x + mlp(x))


def no_norms(x, ln_1, attn, ln_2, mlp):
    x = x + attn(x)
    return x + mlp(x)


def swapped_norms(x, ln_1, attn, ln_2, mlp):
    x = x + attn(ln_2(x))
    return x + mlp(ln_1(x))


def mlp_first(x, ln_1, attn, ln_2, mlp):
    x = x + mlp(ln_2(x))
    return x + attn(ln_1(x))


@pytest.mark.parametrize("fn, words", [
    (post_norm, ["post-norm"]),
    (lambda x, l1, a, l2, m: m(l2(a(l1(x)))), ["residual connections are missing"]),
    (lambda x, l1, a, l2, m: x + a(l1(x)) + m(l2(x)), ["parallel"]),
    (no_norms, ["layer norms were not applied"]),
    (swapped_norms, ["swapped"]),
    (mlp_first, ["MLP ran before"]),
    (lambda x, l1, a, l2, m: x + a(l1(x)), ["MLP part is missing"]),
    (lambda x, l1, a, l2, m: x + m(l2(x)), ["attention part is missing"]),
    (lambda x, l1, a, l2, m: block_forward(x, l1, a, l2, m) * 1.01, ["values differ"]),
    (lambda x, l1, a, l2, m: block_forward(x, l1, a, l2, m)[:, -1], ["expected shape"]),
])
def test_block_forward_wrong_answers(capsys, fn, words):
    expect_failure(capsys, check_block_forward, fn, *words)


def test_block_forward_in_place_is_caught(capsys):
    def in_place(x, ln_1, attn, ln_2, mlp):
        x += attn(ln_1(x))
        x += mlp(ln_2(x))
        return x

    expect_failure(capsys, check_block_forward, in_place, "in place", "x = x + ...")


def test_checkers_leave_the_notebook_rng_alone(capsys):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_block_forward(block_forward)
    check_layer_norm(layer_norm)
    torch.testing.assert_close(torch.rand(3), expected)
