"""Lesson 08 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gptlab.checks.training import check_clip_grad_norm, check_get_lr, check_split_decay
from gptlab.schedule import configure_optimizer
from gptlab.train import TrainConfig


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 8.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 8.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


# ----------------------------------------------------------------------------- 8.1


def get_lr(step, max_lr, min_lr, warmup, decay_steps):
    if step < warmup:
        return max_lr * (step + 1) / (warmup + 1)
    if step >= decay_steps:
        return min_lr
    ratio = (step - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def lr_variant(warm=None, after=None, cos_min=None, cos_start=None):
    def fn(step, max_lr, min_lr, warmup, decay_steps):
        if step < warmup:
            return warm(step, max_lr, warmup) if warm else get_lr(step, max_lr, min_lr, warmup,
                                                                  decay_steps)
        if step >= decay_steps and after != "cosine":
            return min_lr
        start = warmup if cos_start is None else cos_start
        low = min_lr if cos_min is None else cos_min
        ratio = (step - start) / (decay_steps - start)
        return low + 0.5 * (1 + math.cos(math.pi * ratio)) * (max_lr - low)

    return fn


def test_get_lr_passes_reference(capsys):
    assert check_get_lr(get_lr)
    assert "✅ Exercise 8.1 passed" in capsys.readouterr().out
    # nanoGPT's ordering (step > decay_steps) gives the same numbers
    def nanogpt(it, lr, min_lr, warmup, decay):
        if it < warmup:
            return lr * (it + 1) / (warmup + 1)
        if it > decay:
            return min_lr
        ratio = (it - warmup) / (decay - warmup)
        return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)

    assert check_get_lr(nanogpt)
    assert check_get_lr(lambda *a: torch.tensor(get_lr(*a)))  # a 0-d tensor is a number too


def test_get_lr_stub(capsys):
    assert not check_get_lr(stub)
    assert "not done yet" in capsys.readouterr().out


def test_get_lr_wrong_answers(capsys):
    expect_failure(capsys, check_get_lr, lr_variant(warm=lambda s, lr, w: lr * s / w),
                   "step 0 gets learning rate 0")
    expect_failure(capsys, check_get_lr, lr_variant(warm=lambda s, lr, w: lr * (s + 1) / w),
                   "(warmup + 1)")
    expect_failure(capsys, check_get_lr, lr_variant(warm=lambda s, lr, w: lr),
                   "during warmup")
    expect_failure(capsys, check_get_lr, lr_variant(after="cosine"), "stays at min_lr")
    expect_failure(capsys, check_get_lr, lr_variant(cos_min=0.0), "not at 0")
    expect_failure(capsys, check_get_lr, lr_variant(cos_start=0), "starts when warmup ends")
    expect_failure(capsys, check_get_lr, lambda *a: get_lr(*a) * 1.01, "expected", "got")
    expect_failure(capsys, check_get_lr, lambda *a: [get_lr(*a)], "a number")
    expect_failure(capsys, check_get_lr, lambda *a: None, "a number")


# ----------------------------------------------------------------------------- 8.2


def clip_grad_norm(params, max_norm):
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.sqrt(sum((g ** 2).sum() for g in grads))
    coef = max_norm / (total + 1e-6)
    if coef < 1:
        for g in grads:
            g.mul_(coef)
    return total


def test_clip_grad_norm_passes_reference_and_torch(capsys):
    assert check_clip_grad_norm(clip_grad_norm)
    assert "✅ Exercise 8.2 passed" in capsys.readouterr().out
    assert check_clip_grad_norm(torch.nn.utils.clip_grad_norm_)

    def floats_and_new_grads(params, max_norm):  # returns a float, replaces the .grad tensors
        ps = [p for p in params if p.grad is not None]
        total = math.sqrt(sum(p.grad.norm().item() ** 2 for p in ps))
        for p in ps:
            p.grad = p.grad * min(1.0, max_norm / (total + 1e-6))
        return total

    assert check_clip_grad_norm(floats_and_new_grads)


def test_clip_grad_norm_stub(capsys):
    assert not check_clip_grad_norm(stub)
    assert "not done yet" in capsys.readouterr().out


def test_clip_grad_norm_wrong_answers(capsys):
    def after(params, max_norm):
        clip_grad_norm(params, max_norm)
        return torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))

    def no_scaling(params, max_norm):
        return torch.sqrt(sum((p.grad ** 2).sum() for p in params if p.grad is not None))

    def always(params, max_norm):
        total = no_scaling(params, max_norm)
        for p in params:
            if p.grad is not None:
                p.grad.mul_(max_norm / (total + 1e-6))
        return total

    def each_alone(params, max_norm):
        total = no_scaling(params, max_norm)
        for p in params:
            if p.grad is not None:
                torch.nn.utils.clip_grad_norm_([p], max_norm)
        return total

    def sum_of_norms(params, max_norm):
        total = sum(p.grad.norm() for p in params if p.grad is not None)
        for p in params:
            if p.grad is not None and total > max_norm:
                p.grad.mul_(max_norm / total)
        return total

    def changes_weights(params, max_norm):
        total = clip_grad_norm(params, max_norm)
        with torch.no_grad():
            for p in params:
                p.mul_(0.5)
        return total

    def zero_missing(params, max_norm):
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        return clip_grad_norm(params, max_norm)

    expect_failure(capsys, check_clip_grad_norm, after, "*after* clipping")
    expect_failure(capsys, check_clip_grad_norm, no_scaling, "did not change")
    expect_failure(capsys, check_clip_grad_norm, always, "only scales")
    expect_failure(capsys, check_clip_grad_norm, each_alone, "on its own")
    expect_failure(capsys, check_clip_grad_norm, sum_of_norms, "total gradient norm")
    expect_failure(capsys, check_clip_grad_norm, changes_weights, "only the gradients")
    expect_failure(capsys, check_clip_grad_norm, zero_missing, "keep none")
    expect_failure(capsys, check_clip_grad_norm, lambda ps, m: None, "returned None")
    expect_failure(capsys, check_clip_grad_norm, lambda ps, m: "1.0", "a number")


def test_clip_grad_norm_leaves_global_rng_alone():
    torch.manual_seed(3)
    a = torch.rand(3)
    torch.manual_seed(3)
    check_clip_grad_norm(clip_grad_norm)
    assert torch.equal(torch.rand(3), a)


# ----------------------------------------------------------------------------- 8.3


def split_decay(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]


def test_split_decay_passes_reference(capsys):
    assert check_split_decay(split_decay)
    assert "✅ Exercise 8.3 passed" in capsys.readouterr().out

    def from_library(model):
        opt = configure_optimizer(model, TrainConfig(weight_decay=0.1))
        groups = {g["weight_decay"]: g["params"] for g in opt.param_groups}
        return groups.get(0.1, []), groups.get(0.0, [])

    assert check_split_decay(from_library)

    def by_name(model):  # named_parameters, tuples instead of lists
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return (tuple(p for n, p in named if p.ndim >= 2),
                tuple(p for n, p in named if p.ndim < 2))

    assert check_split_decay(by_name)


def test_split_decay_stub(capsys):
    assert not check_split_decay(stub)
    assert "not done yet" in capsys.readouterr().out


def test_split_decay_wrong_answers(capsys):
    def everything(model):
        return [p for p in model.parameters() if p.requires_grad], []

    def embeddings_excluded(model):
        decay, no_decay = split_decay(model)
        emb = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        return ([p for p in decay if id(p) not in emb],
                no_decay + [p for p in decay if id(p) in emb])

    def with_frozen(model):
        params = list(model.parameters())
        return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]

    def duplicates(model):
        params = [p for _, p in model.named_parameters(remove_duplicate=False) if p.requires_grad]
        return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]

    def biases_only(model):  # forgets the norm gains
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return ([p for n, p in named if p.dim() >= 2],
                [p for n, p in named if n.endswith("bias")])

    def names(model):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        return [n for n, p in named if p.dim() >= 2], [n for n, p in named if p.dim() < 2]

    def copies(model):
        decay, no_decay = split_decay(model)
        return [p.detach().clone() for p in decay], no_decay

    expect_failure(capsys, check_split_decay, everything, "should not be decayed", "ln_1.weight")
    expect_failure(capsys, check_split_decay, lambda m: split_decay(m)[::-1],
                   "should not be decayed")
    expect_failure(capsys, check_split_decay, embeddings_excluded, "should be decayed",
                   "wte.weight")
    expect_failure(capsys, check_split_decay, with_frozen, "requires_grad=False")
    expect_failure(capsys, check_split_decay, duplicates, "more than once")
    expect_failure(capsys, check_split_decay, biases_only, "in neither group", "ln_1.weight")
    expect_failure(capsys, check_split_decay, names, "holds names")
    expect_failure(capsys, check_split_decay, copies, "not copies")
    expect_failure(capsys, check_split_decay, lambda m: split_decay(m)[0], "two lists")
    expect_failure(capsys, check_split_decay, lambda m: (split_decay(m)[0][0], []),
                   "list of parameters")
