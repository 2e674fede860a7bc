"""Lesson 09 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import pytest
import torch

from gptlab.checks.sampling import (
    check_softmax_with_temperature,
    check_top_k_filter,
    check_top_p_filter,
)
from gptlab.generate import top_k_filter, top_p_filter

NEG_INF = float("-inf")


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 9.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 9.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


@pytest.mark.parametrize("checker", [check_softmax_with_temperature, check_top_k_filter,
                                     check_top_p_filter])
def test_stub_is_not_done_yet(capsys, checker):
    assert not checker(stub)
    assert "not done yet" in capsys.readouterr().out


def test_checks_leave_the_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    check_top_p_filter(top_p_filter)
    assert torch.equal(torch.rand(3), expected)


# ----------------------------------------------------------------------------- 9.1


def softmax_with_temperature(logits, temperature):
    return torch.softmax(logits / temperature, dim=-1)


def by_hand(logits, temperature):
    z = logits / temperature
    z = z - z.max(dim=-1, keepdim=True).values
    e = z.exp()
    return e / e.sum(dim=-1, keepdim=True)


def test_temperature_passes_reference(capsys):
    assert check_softmax_with_temperature(softmax_with_temperature)
    assert "✅ Exercise 9.1 passed" in capsys.readouterr().out
    assert check_softmax_with_temperature(by_hand)
    assert check_softmax_with_temperature(
        lambda x, t: torch.softmax(x.double() / t, dim=-1))  # float64 is fine too


def test_temperature_wrong_answers(capsys):
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: torch.softmax(x * t, dim=-1), "multiplied")
    expect_failure(capsys, check_softmax_with_temperature, lambda x, t: x / t,
                   "return probabilities")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: torch.softmax(x, dim=-1), "without the temperature")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: torch.softmax(x / t, dim=0), "sum to 1", "dim=-1")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: (x / t).exp() / (x / t).exp().sum(dim=-1, keepdim=True),
                   "overflows", "maximum")

    def in_place(x, t):
        x /= t
        return torch.softmax(x, dim=-1)

    expect_failure(capsys, check_softmax_with_temperature, in_place, "in place")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: softmax_with_temperature(x, t).tolist(), "torch.Tensor")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: softmax_with_temperature(x, 1.05 * t), "expected", "got")
    expect_failure(capsys, check_softmax_with_temperature,
                   lambda x, t: softmax_with_temperature(x, t) * 1.01, "sum to 1",
                   "torch.softmax")


# ----------------------------------------------------------------------------- 9.2


def top_k_by_sorting(logits, k):
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = logits.sort(dim=-1, descending=True).values[..., k - 1 : k]
    return torch.where(logits >= kth, logits, torch.full_like(logits, NEG_INF))


def test_top_k_passes_reference(capsys):
    assert check_top_k_filter(top_k_filter)
    assert "✅ Exercise 9.2 passed" in capsys.readouterr().out
    assert check_top_k_filter(top_k_by_sorting)


def top_k_variant(*, exactly_k=False, guard=True, flat=False, fill=NEG_INF, strict=False,
                  in_place=False):
    def fn(logits, k):
        if guard and k >= logits.shape[-1]:
            return logits.clone()
        if exactly_k:
            idx = torch.topk(logits, k, dim=-1).indices
            out = torch.full_like(logits, fill)
            return out.scatter(-1, idx, logits.gather(-1, idx))
        kth = (torch.topk(logits.flatten(), k).values[-1] if flat
               else torch.topk(logits, k, dim=-1).values[..., -1:])
        remove = logits <= kth if strict else logits < kth
        if strict:  # keep the top k - 1 (an off-by-one)
            remove = logits < torch.topk(logits, k - 1, dim=-1).values[..., -1:] if k > 1 \
                else torch.ones_like(logits, dtype=torch.bool)
        if in_place:
            return logits.masked_fill_(remove, fill)
        return logits.masked_fill(remove, fill)

    return fn


def test_top_k_wrong_answers(capsys):
    expect_failure(capsys, check_top_k_filter, top_k_variant(exactly_k=True), "tied",
                   "should keep token ids")
    expect_failure(capsys, check_top_k_filter, top_k_variant(guard=False),
                   "larger than the vocabulary", "clone")
    expect_failure(capsys, check_top_k_filter, top_k_variant(flat=True), "its own k-th",
                   "row 0")
    expect_failure(capsys, check_top_k_filter, top_k_variant(fill=0.0), "float('-inf')",
                   "ordinary logit")
    expect_failure(capsys, check_top_k_filter, top_k_variant(fill=-1e9), "float('-inf')")
    expect_failure(capsys, check_top_k_filter, top_k_variant(strict=True), "off-by-one")
    expect_failure(capsys, check_top_k_filter, top_k_variant(in_place=True), "in place")
    expect_failure(capsys, check_top_k_filter,
                   lambda x, k: torch.softmax(top_k_filter(x, k), dim=-1),
                   "returned probabilities")
    expect_failure(capsys, check_top_k_filter, lambda x, k: top_k_filter(x, k) / 2,
                   "unchanged")
    expect_failure(capsys, check_top_k_filter, lambda x, k: top_k_filter(x, k).tolist(),
                   "torch.Tensor")


# ----------------------------------------------------------------------------- 9.3


def top_p_by_hand(logits, p, *, shortcut=True, stable=True, rule="before", keep_first=True,
                  scatter=True):
    """Variants of the nucleus filter; the defaults are right (in float64)."""
    if shortcut and p >= 1:
        return logits.clone()
    probs = torch.softmax(logits.double() if shortcut else logits, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True, stable=stable)
    cum = sorted_probs.cumsum(dim=-1)
    if rule == "before":  # remove when the tokens above already hold >= p
        remove = (cum - sorted_probs) >= p
    elif rule == "shift":  # the HF-style 'cum > p, shifted right by one'
        remove = torch.zeros_like(cum, dtype=torch.bool)
        remove[..., 1:] = cum[..., :-1] > p
    else:  # "cum": remove when the running total passes p (drops the crossing token)
        remove = cum > p
    if keep_first:
        remove[..., 0] = False
    if not scatter:
        return sorted_probs.log().masked_fill(remove, NEG_INF)
    mask = remove.scatter(-1, order, remove)
    return logits.masked_fill(mask, NEG_INF)


def test_top_p_passes_reference(capsys):
    assert check_top_p_filter(top_p_filter)
    assert "✅ Exercise 9.3 passed" in capsys.readouterr().out
    assert check_top_p_filter(top_p_by_hand)


def test_top_p_wrong_answers(capsys):
    expect_failure(capsys, check_top_p_filter, lambda x, p: top_p_by_hand(x, p, rule="shift"),
                   "too many", ">= p")
    expect_failure(capsys, check_top_p_filter, lambda x, p: top_p_by_hand(x, p, rule="cum"),
                   "too few")
    expect_failure(capsys, check_top_p_filter, lambda x, p: torch.full_like(x, NEG_INF),
                   "always kept")
    expect_failure(capsys, check_top_p_filter, lambda x, p: top_p_by_hand(x, p, shortcut=False),
                   "p = 1 keeps every token")
    expect_failure(capsys, check_top_p_filter, lambda x, p: top_p_by_hand(x, p, stable=False),
                   "stable=True")
    expect_failure(capsys, check_top_p_filter, lambda x, p: top_p_by_hand(x, p, scatter=False),
                   "vocabulary order")
    expect_failure(capsys, check_top_p_filter,
                   lambda x, p: top_p_filter(x, p).masked_fill(top_p_filter(x, p) == NEG_INF, 0),
                   "float('-inf')")

    def in_place(x, p):
        out = top_p_filter(x, p)
        x.copy_(out)
        return out

    expect_failure(capsys, check_top_p_filter, in_place, "in place")
