"""Lesson 07 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import pytest
import torch

from gptlab.checks.model import (
    GPTParts,
    check_count_params,
    check_flops_per_token,
    check_gpt_forward,
)
from gptlab.config import GPTConfig, param_formula
from gptlab.model import GPT


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 7.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 7.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 7.1


def gpt_forward(model, idx):
    T = idx.shape[1]
    x = model.wte(idx) + model.wpe(torch.arange(T, device=idx.device))
    for block in model.h:
        x = block(x)
    return model.lm_head(model.ln_f(x))


def forward_variant(positions=True, final_norm=True, head="lm_head"):
    def fn(model, idx):
        T = idx.shape[1]
        x = model.wte(idx)
        if positions:
            x = x + model.wpe.weight[:T]
        for block in model.h:
            x = block(x)
        if final_norm:
            x = model.ln_f(x)
        return x @ model.wte.weight.T if head == "wte" else model.lm_head(x)
    return fn


def test_gpt_forward_passes_reference(capsys):
    assert check_gpt_forward(gpt_forward)
    assert "✅ Exercise 7.1 passed" in capsys.readouterr().out
    # other right ways: wpe's weight rows, and the tied head written out (on a tied model it
    # is the same, but the check's untied model needs lm_head, so only lm_head variants pass)
    assert check_gpt_forward(forward_variant())


def test_gpt_forward_stub(capsys):
    assert not check_gpt_forward(stub)
    assert "not done yet" in capsys.readouterr().out


def test_gpt_forward_wrong_answers(capsys):
    expect_failure(capsys, check_gpt_forward, forward_variant(positions=False),
                   "position embeddings are missing")
    expect_failure(capsys, check_gpt_forward, forward_variant(final_norm=False),
                   "final LayerNorm is missing")
    expect_failure(capsys, check_gpt_forward, forward_variant(head="wte"),
                   "tie_weights=False")
    expect_failure(capsys, check_gpt_forward,
                   lambda m, idx: torch.softmax(gpt_forward(m, idx), dim=-1), "probabilities")
    expect_failure(capsys, check_gpt_forward, lambda m, idx: gpt_forward(m, idx)[:, -1],
                   "last position only")
    expect_failure(capsys, check_gpt_forward, lambda m, idx: (gpt_forward(m, idx), None),
                   "tuple")
    expect_failure(capsys, check_gpt_forward, lambda m, idx: gpt_forward(m, idx) * 1.01,
                   "values differ")

    def in_place(m, idx):
        out = gpt_forward(m, idx)
        idx.zero_()
        return out

    expect_failure(capsys, check_gpt_forward, in_place, "in place")


def test_gpt_forward_calling_the_model_is_refused(capsys):
    with pytest.raises(TypeError, match="from the parts"):
        check_gpt_forward(lambda m, idx: m(idx)[0])
    assert "💥" in capsys.readouterr().out


def test_gpt_parts_hold_the_models_modules():
    model = GPT(GPTConfig.preset("tiny"))
    parts = GPTParts(model)
    assert parts.wte is model.wte and parts.h is model.h and parts.lm_head is model.lm_head
    assert "n_layer=2" in repr(parts)


# ----------------------------------------------------------------------------- 7.2


def count_params(V, T, L, C):
    return V * C + T * C + L * (12 * C * C + 13 * C) + 2 * C


def test_count_params_passes_reference(capsys):
    assert check_count_params(count_params)
    assert "✅ Exercise 7.2 passed" in capsys.readouterr().out
    assert check_count_params(lambda V, T, L, C: torch.tensor(count_params(V, T, L, C)))
    assert check_count_params(lambda V, T, L, C: float(count_params(V, T, L, C)))
    assert count_params(50257, 1024, 12, 768) == 124_439_808


def test_count_params_stub(capsys):
    assert not check_count_params(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda V, T, L, C: count_params(V, T, L, C) + V * C, "tied weights"),
    (lambda V, T, L, C: count_params(V, T, L, C) - T * C, "wpe"),
    (lambda V, T, L, C: count_params(V, T, L, C) - 2 * C, "ln_f"),
    (lambda V, T, L, C: count_params(V, T, L, C) - 4 * L * C, "ln_1, ln_2"),
    (lambda V, T, L, C: count_params(V, T, L, C) - 9 * L * C, "biases of the Linear"),
    (lambda V, T, L, C: V * C + T * C + L * (6 * C * C + 10 * C) + 2 * C, "MLP is too small"),
    (lambda V, T, L, C: count_params(V, T, L, C) - L * (2 * C * C + 2 * C), "c_attn"),
    (lambda V, T, L, C: count_params(V, T, L, C) + 1, "off by +1"),
    (lambda V, T, L, C: "many", "expected a int"),
])
def test_count_params_wrong_answers(capsys, wrong, words):
    expect_failure(capsys, check_count_params, wrong, words)


def test_count_params_hints_match_the_library():
    # the hint table's differences are what the library's own breakdown says
    cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=1, n_embd=64)
    untied = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=1, n_embd=64,
                       tie_weights=False)
    assert param_formula(untied) - param_formula(cfg) == 65 * 64
    no_bias = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=1, n_embd=64,
                        bias=False)
    assert param_formula(cfg) - param_formula(no_bias) == 9 * 2 * 64 + 5 * 64


# ----------------------------------------------------------------------------- 7.3


def flops_per_token(N, L, C, T):
    return 6 * N + 12 * L * C * T


def test_flops_passes_reference(capsys):
    assert check_flops_per_token(flops_per_token)
    assert "✅ Exercise 7.3 passed" in capsys.readouterr().out


def test_flops_stub(capsys):
    assert not check_flops_per_token(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda N, L, C, T: 6 * N, "attention term is missing"),
    (lambda N, L, C, T: 2 * N + 4 * L * C * T, "forward pass only"),
    (lambda N, L, C, T: 2 * N, "backward pass"),
    (lambda N, L, C, T: 6 * N + 6 * L * C * T, "half the right size"),
    (lambda N, L, C, T: 6 * N + 12 * L * C * T + 1, "12 * n_layer * n_embd * T"),
])
def test_flops_wrong_answers(capsys, wrong, words):
    expect_failure(capsys, check_flops_per_token, wrong, words)


def test_flops_matches_model_method():
    cfg = GPTConfig.preset("tiny")
    model = GPT(cfg)
    N = model.num_params(non_embedding=True)
    assert model.flops_per_token(17) == flops_per_token(N, cfg.n_layer, cfg.n_embd, 17)
