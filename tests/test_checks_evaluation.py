"""Lesson 10 checkers: each passes the reference, explains and raises on a wrong answer, and
says "not done yet" for a stub."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptlab.checks.evaluation import (
    check_evaluate_sliding,
    check_longest_common_substring,
    check_summarize_loss,
)


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 10.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 10.")
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


@pytest.mark.parametrize("checker", [check_summarize_loss, check_evaluate_sliding,
                                     check_longest_common_substring])
def test_stub_is_not_done(capsys, checker):
    result = checker(stub)
    assert not result
    assert "not done yet" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 10.1


def summarize_loss(total_nats, n_tokens, n_bytes):
    loss = total_nats / n_tokens
    return loss, math.exp(loss), total_nats / math.log(2) / n_bytes


def test_summarize_loss_passes_reference(capsys):
    assert check_summarize_loss(summarize_loss)
    assert "✅ Exercise 10.1 passed" in capsys.readouterr().out
    # tensors and lists are fine too
    assert check_summarize_loss(lambda t, n, b: [torch.tensor(v) for v in summarize_loss(t, n, b)])


def variant(loss=None, ppl=None, bpb=None):
    def fn(total, n, b):
        ref = summarize_loss(total, n, b)
        return (loss(total, n, b) if loss else ref[0], ppl(total, n, b) if ppl else ref[1],
                bpb(total, n, b) if bpb else ref[2])
    return fn


def test_summarize_loss_wrong_answers(capsys):
    ln2 = math.log(2)
    expect_failure(capsys, check_summarize_loss, variant(loss=lambda t, n, b: t), "a mean")
    expect_failure(capsys, check_summarize_loss, variant(loss=lambda t, n, b: t / b),
                   "per token")
    expect_failure(capsys, check_summarize_loss, variant(ppl=lambda t, n, b: 2 ** (t / n)),
                   "e ** loss")
    expect_failure(capsys, check_summarize_loss, variant(ppl=lambda t, n, b: math.exp(-t / n)),
                   "exp(+loss)")
    expect_failure(capsys, check_summarize_loss, variant(bpb=lambda t, n, b: t / b),
                   "nats per byte")
    expect_failure(capsys, check_summarize_loss, variant(bpb=lambda t, n, b: t / ln2 / n),
                   "bits per TOKEN")
    expect_failure(capsys, check_summarize_loss, variant(bpb=lambda t, n, b: t * ln2 / b),
                   "don't multiply")
    expect_failure(capsys, check_summarize_loss, variant(bpb=lambda t, n, b: t / b * 1.1),
                   "should be", "got")
    expect_failure(capsys, check_summarize_loss, lambda t, n, b: t / n, "tuple of three")
    expect_failure(capsys, check_summarize_loss, lambda t, n, b: (t / n, None, 0.0),
                   "perplexity should be a number")


# ----------------------------------------------------------------------------- 10.2


@torch.no_grad()
def evaluate_sliding(model, ids, block_size, stride):
    total, scored_to, s, n = 0.0, 0, 0, len(ids)
    while scored_to < n - 1:
        e = min(s + block_size, n - 1)
        logits, _ = model(ids[s:e][None])
        losses = F.cross_entropy(logits[0], ids[s + 1:e + 1], reduction="none")
        new = e - max(scored_to, s)
        total += losses[-new:].sum().item()
        scored_to, s = e, s + stride
    return total, n - 1


def windows_variant(score_first=False, double=False, use_model_block=False, no_stride=False,
                    drop_last=False):
    """evaluate_sliding with one of the usual slips."""
    @torch.no_grad()
    def fn(model, ids, block_size, stride):
        T = model.config.block_size if use_model_block else block_size
        st = T if no_stride else stride
        total, count, scored_to, s, n = 0.0, 0, 0, 0, len(ids)
        while scored_to < n - 1:
            e = min(s + T, n - 1)
            if drop_last and e - s < T:
                break
            logits, _ = model(ids[s:e][None])
            losses = F.cross_entropy(logits[0], ids[s + 1:e + 1], reduction="none")
            new = e - s if double else e - max(scored_to, s)
            part = losses[:new] if score_first else losses[-new:]
            total += part.sum().item()
            count += new
            scored_to, s = e, s + st
        return total, count
    return fn


def test_evaluate_sliding_passes_reference(capsys):
    assert check_evaluate_sliding(evaluate_sliding)
    assert "✅ Exercise 10.2 passed" in capsys.readouterr().out
    assert check_evaluate_sliding(windows_variant())  # the variant machinery is right
    assert check_evaluate_sliding(lambda *a: (torch.tensor(evaluate_sliding(*a)[0]),
                                              evaluate_sliding(*a)[1]))


def test_evaluate_sliding_wrong_answers(capsys):
    expect_failure(capsys, check_evaluate_sliding, windows_variant(double=True), "scored twice")
    expect_failure(capsys, check_evaluate_sliding, windows_variant(drop_last=True),
                   "never scored")
    expect_failure(capsys, check_evaluate_sliding, windows_variant(no_stride=True),
                   "non-overlapping")
    expect_failure(capsys, check_evaluate_sliding, windows_variant(score_first=True),
                   "LAST targets")
    expect_failure(capsys, check_evaluate_sliding, windows_variant(use_model_block=True),
                   "block_size argument")
    expect_failure(capsys, check_evaluate_sliding,
                   lambda *a: (evaluate_sliding(*a)[0] + 0.5, evaluate_sliding(*a)[1]),
                   "total_nats should be")
    expect_failure(capsys, check_evaluate_sliding, lambda *a: evaluate_sliding(*a)[0],
                   "tuple (total_nats, n_scored)")


def test_evaluate_sliding_reports_learner_errors(capsys):
    def broken(model, ids, block_size, stride):
        return model(ids[None])  # the whole text at once: longer than the model's context

    with pytest.raises(Exception):  # noqa: B017 (whatever the model raises is re-raised)
        check_evaluate_sliding(broken)
    assert "your code raised" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 10.3


def longest_common_substring(a, b):
    best_len, best_end = 0, 0
    prev = [0] * (len(b) + 1)
    for i in range(1, len(a) + 1):
        cur = [0] * (len(b) + 1)
        for j in range(1, len(b) + 1):
            if a[i - 1] == b[j - 1]:
                cur[j] = prev[j - 1] + 1
                if cur[j] > best_len:
                    best_len, best_end = cur[j], i
        prev = cur
    return a[best_end - best_len:best_end]


def test_longest_common_substring_passes_reference(capsys):
    assert check_longest_common_substring(longest_common_substring)
    assert "✅ Exercise 10.3 passed" in capsys.readouterr().out


def common_subsequence(a, b):
    """The longest common SUBSEQUENCE (characters may be skipped): a classic mix-up."""
    dp = [[""] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            dp[i + 1][j + 1] = dp[i][j] + a[i] if a[i] == b[j] else max(
                dp[i][j + 1], dp[i + 1][j], key=len)
    return dp[-1][-1]


def test_longest_common_substring_wrong_answers(capsys):
    expect_failure(capsys, check_longest_common_substring, common_subsequence, "contiguous")
    expect_failure(capsys, check_longest_common_substring,
                   lambda a, b: longest_common_substring(a, b)[:-1], "a longer common substring")
    expect_failure(capsys, check_longest_common_substring,
                   lambda a, b: len(longest_common_substring(a, b)), "should return a str")
    expect_failure(capsys, check_longest_common_substring, lambda a, b: a, "does not appear in b")
