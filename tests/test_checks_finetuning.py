"""Lesson 11 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import pytest
import torch

from gptlab.checks.finetuning import check_freeze_bottom, check_lora_forward, check_merge_weight


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 11.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 11.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 11.1


def freeze_bottom(model, n_layers):
    for m in [model.wte, model.wpe, *model.h[:n_layers]]:
        if m is not None:
            m.requires_grad_(False)


def test_freeze_bottom_passes_reference(capsys):
    assert check_freeze_bottom(freeze_bottom)
    assert "✅ Exercise 11.1 passed" in capsys.readouterr().out

    def by_name(model, n_layers):  # another correct way: by parameter names
        for name, p in model.named_parameters():
            parts = name.split(".")
            if parts[0] in ("wte", "wpe") or (parts[0] == "h" and int(parts[1]) < n_layers):
                p.requires_grad = False

    assert check_freeze_bottom(by_name)


def test_freeze_bottom_stub(capsys):
    assert not check_freeze_bottom(stub)
    assert "not done yet" in capsys.readouterr().out


def test_freeze_bottom_wrong_answers(capsys):
    def module_attribute(model, n_layers):  # sets an attribute, freezes nothing
        for m in [model.wte, *model.h[:n_layers]]:
            m.requires_grad = False

    expect_failure(capsys, check_freeze_bottom, module_attribute, "no parameter was frozen",
                   "requires_grad_(False)")

    def blocks_only(model, n_layers):
        for b in model.h[:n_layers]:
            b.requires_grad_(False)

    expect_failure(capsys, check_freeze_bottom, blocks_only, "wte", "embeddings")

    def top_blocks(model, n_layers):
        for m in [model.wte, model.wpe, *model.h[len(model.h) - n_layers:]]:
            m.requires_grad_(False)

    expect_failure(capsys, check_freeze_bottom, top_blocks, "top blocks", "h.2")

    def one_too_many(model, n_layers):
        freeze_bottom(model, n_layers + 1)

    expect_failure(capsys, check_freeze_bottom, one_too_many, "one block too many", "range(1)")

    def one_too_few(model, n_layers):
        freeze_bottom(model, n_layers)
        model.h[n_layers - 1].requires_grad_(True)

    expect_failure(capsys, check_freeze_bottom, one_too_few, "one block too few")

    def also_ln_f(model, n_layers):
        freeze_bottom(model, n_layers)
        model.ln_f.requires_grad_(False)

    expect_failure(capsys, check_freeze_bottom, also_ln_f, "ln_f and lm_head", "ln_f.bias")

    def also_head(model, n_layers):  # fine while lm_head is wte: caught on the untied model
        freeze_bottom(model, n_layers)
        model.lm_head.requires_grad_(False)

    expect_failure(capsys, check_freeze_bottom, also_head, "ln_f and lm_head", "untied",
                   "lm_head.weight")

    def changes_values(model, n_layers):
        freeze_bottom(model, n_layers)
        with torch.no_grad():
            model.h[0].ln_1.weight.zero_()

    expect_failure(capsys, check_freeze_bottom, changes_values, "changed the values",
                   "h.0.ln_1.weight")

    def ignores_missing_wpe(model, n_layers):
        for m in [model.wte, model.wpe, *model.h[:n_layers]]:
            m.requires_grad_(False)

    expect_failure(capsys, check_freeze_bottom, ignores_missing_wpe, "model.wpe is None",
                   "rotary")


def test_freeze_bottom_other_errors_are_reraised(capsys):
    def broken(model, n_layers):
        raise KeyError("oops")

    with pytest.raises(KeyError):
        check_freeze_bottom(broken)
    out = capsys.readouterr().out
    assert "💥" in out and "n_layers=1" in out


# ----------------------------------------------------------------------------- 11.2


def lora_forward(x, weight, bias, A, B, alpha):
    out = x @ weight.T + (alpha / A.shape[0]) * (x @ A.T) @ B.T
    return out if bias is None else out + bias


def test_lora_forward_passes_reference(capsys):
    assert check_lora_forward(lora_forward)
    assert "✅ Exercise 11.2 passed" in capsys.readouterr().out

    def merged_first(x, weight, bias, A, B, alpha):  # slower, but the same numbers
        return torch.nn.functional.linear(x, weight + alpha / A.shape[0] * B @ A, bias)

    assert check_lora_forward(merged_first)


def test_lora_forward_stub(capsys):
    assert not check_lora_forward(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda x, W, b, A, B, a: x @ W.T + (0 if b is None else b), ["base layer's alone"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A, B, A.shape[0]), ["not scaled"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A, B, a * A.shape[0]), ["not alpha"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A, B, A.shape[0] ** 2 / a),
     ["not rank / alpha"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, None, A, B, a), ["bias is missing"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A.detach(), B.detach(), a),
     ["no gradient reached A"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A, B, a)[..., :-1], ["shape"]),
    (lambda x, W, b, A, B, a: lora_forward(x, W, b, A, B, a) + 0.1, ["values differ"]),
])
def test_lora_forward_wrong_answers(capsys, wrong, words):
    expect_failure(capsys, check_lora_forward, wrong, *words)


def test_lora_forward_in_place_and_errors(capsys):
    def in_place(x, weight, bias, A, B, alpha):
        out = lora_forward(x, weight, bias, A, B, alpha)
        x.mul_(2)
        return out

    expect_failure(capsys, check_lora_forward, in_place, "changed its input x")

    def wrong_transpose(x, weight, bias, A, B, alpha):
        return x @ weight.T + (x @ A) @ B

    with pytest.raises(RuntimeError):
        check_lora_forward(wrong_transpose)
    assert "💥" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 11.3


def merge_weight(weight, A, B, alpha):
    return weight + (alpha / A.shape[0]) * B @ A


def test_merge_weight_passes_reference(capsys):
    assert check_merge_weight(merge_weight)
    assert "✅ Exercise 11.3 passed" in capsys.readouterr().out
    assert check_merge_weight(lambda W, A, B, a: torch.addmm(W, B, A, alpha=a / A.shape[0]))


def test_merge_weight_stub(capsys):
    assert not check_merge_weight(stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, words", [
    (lambda W, A, B, a: a / A.shape[0] * B @ A, ["only the update"]),
    (lambda W, A, B, a: W + B @ A, ["not scaled"]),
    (lambda W, A, B, a: W + a * B @ A, ["not alpha"]),
    (lambda W, A, B, a: W + A.shape[0] / a * B @ A, ["not rank / alpha"]),
    (lambda W, A, B, a: merge_weight(W, A, B, a).T, ["transpose", "(out, in)"]),
    (lambda W, A, B, a: W.add_(a / A.shape[0] * B @ A), ["in place", "weight"]),
    (lambda W, A, B, a: merge_weight(W, A, B, a) + 0.01, ["values differ"]),
])
def test_merge_weight_wrong_answers(capsys, wrong, words):
    expect_failure(capsys, check_merge_weight, wrong, *words)
