"""Checkers for lesson 10 (evaluation): the metrics of a summed loss, a sliding-window
evaluation loop, and the longest common substring behind the memorisation check.

Each compares the learner's function with the library: ``gptlab.evaluate.perplexity`` and
``bits_per_byte``, ``gptlab.evaluate.evaluate(..., stride=...)`` and
``gptlab.evaluate.longest_overlap``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import torch
from torch import Tensor

from gptlab.checks.core import call, exercise, expect_true, fail, short_repr
from gptlab.evaluate import bits_per_byte, evaluate, longest_overlap, perplexity
from gptlab.model import GPT, GPTConfig

__all__ = ["check_evaluate_sliding", "check_longest_common_substring", "check_summarize_loss"]


def _number(x: Any) -> float | None:
    """x as a float if it is one number (int, float, 0-d or 1-element tensor), else None."""
    if isinstance(x, Tensor) and x.numel() == 1:
        return float(x.detach().item())
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    return None


def _near(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


# ----------------------------------------------------------------------------- 10.1


def _loss_hint(got: float, total: float, n_tokens: int, n_bytes: int) -> str:
    if _near(got, total):
        return "the loss is a mean: divide the total by n_tokens."
    if _near(got, total / n_bytes):
        return "the loss is per token: divide by n_tokens (bytes are for bits_per_byte)."
    if _near(got, total / n_tokens / math.log(2)):
        return "keep the loss in nats (natural log units): no division by ln 2 here."
    return "loss = total_nats / n_tokens."


def _ppl_hint(got: float, loss: float, total: float) -> str:
    if _near(got, 2 ** loss):
        return ("the loss is in nats (natural logarithm), so perplexity = e ** loss "
                "(math.exp(loss)); 2 ** x is for a loss in bits.")
    if _near(got, math.exp(-loss)):
        return "perplexity = exp(+loss): it grows with the loss (a uniform guess over V gives V)."
    if total < 700 and _near(got, math.exp(total)):
        return "take exp of the MEAN loss per token, not of the total."
    return "perplexity = math.exp(loss), with loss the mean nats per token."


def _bpb_hint(got: float, total: float, n_tokens: int, n_bytes: int) -> str:
    ln2 = math.log(2)
    if _near(got, total / n_bytes):
        return ("that is nats per byte: divide by ln 2 (math.log(2)) to turn nats into bits.")
    if _near(got, total / ln2 / n_tokens):
        return ("that is bits per TOKEN: divide the total bits by n_bytes, the bytes of text "
                "they cover, not by n_tokens.")
    if _near(got, total * ln2 / n_bytes):
        return "divide by ln 2 (nats -> bits), don't multiply by it."
    if _near(got, total / math.log(10) / n_bytes):
        return "bits use log base 2: divide nats by ln 2, not by ln 10."
    if _near(got, n_bytes * ln2 / total) or _near(got, n_bytes / (total / ln2)):
        return "it is bits per byte: total bits on top, bytes below."
    return "bits_per_byte = total_nats / ln 2 / n_bytes."


@exercise("10.1", "loss, perplexity and bits per byte from a summed loss")
def check_summarize_loss(fn):
    """Check ``summarize_loss(total_nats, n_tokens, n_bytes) -> (loss, perplexity, bpb)``.

    ``total_nats`` is the cross-entropy summed over ``n_tokens`` predicted tokens, which
    cover ``n_bytes`` UTF-8 bytes of text. The function returns the mean loss in nats per
    token, its perplexity ``exp(loss)``, and the bits per byte ``total_nats / ln 2 /
    n_bytes``. Compared with ``gptlab.evaluate.perplexity`` and ``bits_per_byte``.
    """
    cases = [(4 * math.log(2), 2, 4), (2300.5, 1000, 1880), (1000.0, 500, 500),
             (0.0, 10, 12), (4.1744 * 64, 64, 64), (6123.0, 1409, 4311)]
    for total, n_tokens, n_bytes in cases:
        args = f"summarize_loss({total:g}, n_tokens={n_tokens}, n_bytes={n_bytes})"
        got = call(fn, total, n_tokens, n_bytes)
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            fail(f"{args} should return a tuple of three numbers (loss, perplexity, "
                 f"bits_per_byte), got {short_repr(got)}.")
        values = [_number(v) for v in got]
        for name, v, raw in zip(("loss", "perplexity", "bits_per_byte"), values, got):
            if v is None:
                fail(f"{args}: {name} should be a number, got {type(raw).__name__} "
                     f"({short_repr(raw)}).")
        loss, ppl, bpb = values
        e_loss = total / n_tokens
        e_ppl = perplexity(e_loss)
        e_bpb = bits_per_byte(e_loss, n_tokens, n_bytes)
        for name, g, e in (("loss", loss, e_loss), ("perplexity", ppl, e_ppl),
                           ("bits_per_byte", bpb, e_bpb)):
            if math.isclose(g, e, rel_tol=1e-5, abs_tol=1e-7):
                continue
            if name == "loss":
                hint = _loss_hint(g, total, n_tokens, n_bytes)
            elif name == "perplexity":
                hint = _ppl_hint(g, e_loss, total)
            else:
                hint = _bpb_hint(g, total, n_tokens, n_bytes)
            fail(f"{args}: {name} should be {e:.6g}, got {g:.6g}.\n{hint}")
    return f"matches gptlab.evaluate.perplexity and bits_per_byte on {len(cases)} inputs"


# ----------------------------------------------------------------------------- 10.2


def _tiny_model() -> GPT:
    torch.manual_seed(10)
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=16)
    model = GPT(cfg).eval()
    with torch.no_grad():  # larger weights: predictions that depend strongly on the context
        for p in model.parameters():
            p.mul_(3.0)
    return model


def _reference_total(model: GPT, ids: Tensor, block_size: int, stride: int) -> tuple[float, int]:
    r = evaluate(model, ids, block_size=block_size, stride=stride, progress=False)
    return r.loss * r.tokens, r.tokens


@exercise("10.2", "a sliding-window evaluation loop")
def check_evaluate_sliding(fn):
    """Check ``evaluate_sliding(model, ids, block_size, stride) -> (total_nats, n_scored)``.

    Windows of ``block_size`` inputs start at 0, stride, 2 * stride, ... (the last one may
    be shorter); the first window scores all its targets, each later window only the
    targets no earlier window scored (its last ones); the loop ends once the last token has
    been scored. Every token but the first is scored exactly once, so ``n_scored ==
    len(ids) - 1``. Compared with ``gptlab.evaluate.evaluate(model, ids, block_size=...,
    stride=...)`` (loss * tokens) on a tiny random GPT whose context is 8.
    """
    model = _tiny_model()
    g = torch.Generator().manual_seed(3)
    cases = [(40, 8, 8), (40, 8, 4), (41, 8, 3), (9, 8, 8), (9, 8, 2), (2, 8, 1), (30, 8, 1),
             (23, 5, 2), (17, 6, 6)]
    for n, T, stride in cases:
        ids = torch.randint(0, 11, (n,), generator=g)
        before = ids.clone()
        example = f"len(ids)={n}, block_size={T}, stride={stride}"
        got = call(fn, model, ids, T, stride)
        expect_true(torch.equal(ids, before), f"evaluate_sliding changed ids in place ({example})")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"evaluate_sliding({example}) should return a tuple (total_nats, n_scored), "
                 f"got {short_repr(got)}.")
        total, n_scored = _number(got[0]), _number(got[1])
        if total is None or n_scored is None:
            fail(f"evaluate_sliding({example}) should return two numbers (total_nats, "
                 f"n_scored), got {short_repr(tuple(got))}.")
        e_total, e_n = _reference_total(model, ids, T, stride)
        if n_scored != e_n:
            if n_scored > e_n:
                why = ("some targets were scored twice: a window after the first scores only "
                       "the targets that no earlier window scored (its last ones).")
            else:
                why = ("some targets were never scored: the first window scores all its "
                       "targets, and windows go on until the last token (index len(ids) - 1) "
                       "has been scored; the last window may be shorter than block_size.")
            fail(f"evaluate_sliding({example}): n_scored should be {e_n} (every token but the "
                 f"first, once), got {n_scored:g}.\n{why}")
        if not math.isclose(total, e_total, rel_tol=1e-4, abs_tol=1e-4):
            hint = "total_nats = the sum of the cross-entropy of every scored target."
            if stride < T and math.isclose(total, _reference_total(model, ids, T, T)[0],
                                           rel_tol=1e-4, abs_tol=1e-4):
                hint = ("that is the non-overlapping result (stride = block_size): start a "
                        "window every `stride` tokens and score only its new targets, so each "
                        "one is predicted with more context.")
            elif T < model.config.block_size and math.isclose(
                    total, _reference_total(model, ids, model.config.block_size,
                                            min(stride, model.config.block_size))[0],
                    rel_tol=1e-4, abs_tol=1e-4):
                hint = "use the block_size argument for the window length, not the model's."
            elif n_scored == e_n and n > T + 1:
                hint = ("the number of scored targets is right, but not which ones: a later "
                        "window must score its LAST targets (the new ones, with the most "
                        "context), not its first ones.")
            fail(f"evaluate_sliding({example}): total_nats should be {e_total:.6g}, got "
                 f"{total:.6g}.\n{hint}")
    return f"matches gptlab.evaluate(..., stride=...) on {len(cases)} texts and settings"


# ----------------------------------------------------------------------------- 10.3


def _lcs_cases() -> list[tuple[str, str]]:
    rng = random.Random(10)
    cases = [("the cat sat on the mat", "a cat sat down"), ("abc", "xyz"), ("", "abc"),
             ("abc", ""), ("aaaa", "aa"), ("hello", "hello"), ("abcd", "axbxcxd"),
             ("To be, or not to be", "not to be, that is"), ("xyzab", "abxyz"),
             ("ROMEO:\nI will", "JULIET:\nI will not")]
    for _ in range(12):
        a = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        b = "".join(rng.choice("abc") for _ in range(rng.randint(0, 30)))
        cases.append((a, b))
    return cases


@exercise("10.3", "the longest common substring")
def check_longest_common_substring(fn):
    """Check ``longest_common_substring(a, b) -> str``.

    The longest string that appears, contiguous, in both ``a`` and ``b`` ("" when they
    share no character; any one of several longest ones). Its length is compared with
    ``gptlab.evaluate.longest_overlap(a, b)``, and it must be a substring of both.
    """
    cases = _lcs_cases()
    for a, b in cases:
        example = f"a={a!r}, b={b!r}"
        got = call(fn, a, b)
        if not isinstance(got, str):
            fail(f"longest_common_substring({example}) should return a str, got "
                 f"{type(got).__name__} ({short_repr(got)}).")
        ref = longest_overlap(a, b)
        e_len = 0 if ref is None else ref.length
        e_str = "" if ref is None else a[ref.start:ref.start + ref.length]
        for name, text in (("a", a), ("b", b)):
            if got not in text:
                fail(f"longest_common_substring({example}) returned {got!r}, which does not "
                     f"appear in {name}. A substring is contiguous: no characters skipped "
                     f"(that would be a common subsequence). Expected {e_str!r}.")
        if len(got) != e_len:
            fail(f"longest_common_substring({example}) returned {got!r} ({len(got)} "
                 f"characters), but a longer common substring exists: {e_str!r} "
                 f"({e_len} characters).")
    return f"as long as gptlab.evaluate.longest_overlap's on {len(cases)} pairs of strings"
