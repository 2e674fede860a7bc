"""Checkers for lesson 03 (embeddings): one-hot vectors, bigram probabilities, the loss.

The expected answers are computed here with plain loops, not with ``gptlab.bigram``, so each
checker states exactly the behaviour it asks for.
"""

from __future__ import annotations

import itertools
import math

import torch

from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_equal,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)

__all__ = ["check_bigram_probs", "check_nll", "check_one_hot"]


def _one_hot(ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    out = torch.zeros(ids.numel(), vocab_size)
    for row, i in enumerate(ids.flatten().tolist()):
        out[row, i] = 1.0
    return out.view(*ids.shape, vocab_size)


@exercise("3.1", "one-hot encode token ids")
def check_one_hot(fn):
    """Check ``one_hot(ids: LongTensor, vocab_size: int) -> Tensor``.

    For ids of any shape, returns a float32 tensor of shape ``ids.shape + (vocab_size,)`` that
    is all zeros except a 1.0 at position ``ids[...]`` of the last dimension:
    ``one_hot(torch.tensor([2, 0]), 3)`` -> ``[[0., 0., 1.], [1., 0., 0.]]``.
    The input is not modified.
    """
    g = torch.Generator().manual_seed(3)
    cases = [
        (torch.tensor([2, 0]), 3),
        (torch.tensor([0, 1, 2, 3]), 4),
        (torch.tensor([1, 1, 0]), 6),  # the vocabulary is bigger than the largest id
        (torch.tensor([4]), 5),
        (torch.randint(0, 10, (3, 5), generator=g), 10),  # a batch: (B, T)
        (torch.randint(0, 7, (2, 3, 4), generator=g), 7),
    ]
    for ids, V in cases:
        before = ids.clone()
        example = ids if ids.numel() <= 6 else f"ids of shape {tuple(ids.shape)}"
        got = call(fn, ids, V)
        expect_true(torch.equal(ids, before), "one_hot changed its input ids in place; build "
                    "a new tensor instead")
        expect_type(got, torch.Tensor, f"one_hot(ids, {V})", example)
        want_shape = (*ids.shape, V)
        expected = _one_hot(ids, V)
        transposed = (ids.dim() == 1 and tuple(got.shape) == (V, len(ids))
                      and torch.equal(got.detach().float(), expected.T))
        if transposed and len(ids) != V:
            fail(f"one_hot(ids, {V}) has shape {tuple(got.shape)}, expected {want_shape}: it is "
                 "transposed. Each token gets one row (a vector of length vocab_size).")
        if got.numel() == ids.numel() * V and tuple(got.shape) != want_shape:
            fail(f"one_hot(ids, {V}) for ids of shape {tuple(ids.shape)} has shape "
                 f"{tuple(got.shape)}, expected {want_shape}: keep the shape of ids and add "
                 "one new last dimension of size vocab_size.")
        if ids.dim() == 1 and tuple(got.shape) == (len(ids), int(ids.max()) + 1) != want_shape:
            fail(f"one_hot(ids, {V}) has shape {tuple(got.shape)}, expected {want_shape}: the "
                 "vector length must be vocab_size, not the largest id + 1 (ids that do not "
                 "occur in this input still have a column).")
        expect_shape(got, want_shape, f"one_hot(ids, {V})", example)
        if got.dtype != torch.float32:
            fail(f"one_hot(ids, {V}) has dtype {got.dtype}, expected torch.float32: the one-hot "
                 "vectors are multiplied with a float weight matrix (e.g. add .float()).")
        if transposed and not torch.equal(expected, expected.T):
            fail(f"one_hot(ids, {V}) is transposed for input {ids.tolist()}: each token gets "
                 "one row (a vector of length vocab_size), so the result has shape "
                 "ids.shape + (vocab_size,) and out[t, ids[t]] == 1.")
        expect_equal(got, expected, f"one_hot(ids, {V})", example)
    return f"right shapes, dtype and values for {len(cases)} inputs, 1-D to 3-D"


def _smoothed_counts(ids: torch.Tensor, V: int, smoothing: float) -> torch.Tensor:
    counts = torch.full((V, V), float(smoothing), dtype=torch.float64)
    seq = ids.tolist()
    for a, b in itertools.pairwise(seq):
        counts[a, b] += 1
    return counts


def _bigram_probs(ids: torch.Tensor, V: int, smoothing: float) -> torch.Tensor:
    counts = _smoothed_counts(ids, V, smoothing)
    return (counts / counts.sum(dim=1, keepdim=True)).float()


_PROBS_CASES = [
    ([0, 1, 0, 1, 2], 3, 1.0),
    ([0, 1, 0, 1, 2, 0], 3, 0.0),  # every token is followed by something: no empty rows
    ([2, 2, 2, 0, 1, 3, 3, 1, 0, 2], 4, 0.5),
    ([4, 0, 3, 1, 2, 4, 0, 0, 1, 3], 6, 2.0),
]


@exercise("3.2", "bigram counts to probabilities")
def check_bigram_probs(fn):
    """Check ``bigram_probs(ids: LongTensor, vocab_size: int, smoothing=1.0) -> Tensor``.

    ``ids`` is a 1-D tensor of token ids. Returns a (V, V) float tensor: row ``a`` is the
    probability of each next token after ``a``, i.e. ``counts[a, b] + smoothing`` (where
    ``counts[a, b]`` is how often ``b`` directly follows ``a``), divided by the row's sum so
    that every row sums to 1. Checked with the default ``smoothing=1.0`` and with other values
    (``0`` only on inputs where every token is followed by something).
    """
    g = torch.Generator().manual_seed(4)
    cases = list(_PROBS_CASES) + [(torch.randint(0, 8, (300,), generator=g).tolist(), 8, 1.0)]
    for i, (seq, V, smoothing) in enumerate(cases):
        ids = torch.tensor(seq)
        kwargs = {} if i == 0 else {"smoothing": smoothing}  # the first call uses the default
        example = f"ids={seq}, vocab_size={V}" if len(seq) <= 10 else f"{len(seq)} random ids"
        example += f", smoothing={smoothing}" + (" (the default)" if i == 0 else "")
        got = call(fn, ids, V, **kwargs)
        expect_type(got, torch.Tensor, "bigram_probs", example)
        expect_shape(got, (V, V), "bigram_probs", example)
        if not got.dtype.is_floating_point:
            fail(f"bigram_probs gave dtype {got.dtype} for {example}: probabilities are "
                 "fractions; convert the counts with .float() before dividing.")
        expected = _bigram_probs(ids, V, smoothing)
        got = got.detach().float()
        if torch.allclose(got, expected, atol=1e-5):
            continue
        counts = _smoothed_counts(ids, V, smoothing)
        swapped = (counts.T / counts.T.sum(dim=1, keepdim=True)).float()  # counted (next, current)
        if torch.allclose(got, expected.T, atol=1e-5) or torch.allclose(got, swapped, atol=1e-5):
            fail(f"bigram_probs is transposed for {example}: row a must hold what follows a "
                 "(counts[a, b] for the pair a then b), and rows sum to 1.")
        if smoothing and torch.allclose(got, _bigram_probs(ids, V, 0.0), atol=1e-5,
                                        equal_nan=True):
            fail(f"bigram_probs ignores smoothing for {example}: add smoothing to every count "
                 "before normalising.")
        if torch.allclose(got, (counts / counts.sum(dim=0, keepdim=True)).float(), atol=1e-5):
            fail(f"the columns of bigram_probs sum to 1 for {example}, but the rows should: "
                 "divide each row by its own sum, counts.sum(dim=1, keepdim=True).")
        sums = got.sum(dim=1)
        if not torch.allclose(sums, torch.ones(V), atol=1e-4):
            fail(f"the rows of bigram_probs should each sum to 1, got row sums "
                 f"{[round(s, 4) for s in sums.tolist()]} for {example}")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="bigram_probs", example=example)
    return f"rows of next-token probabilities match on {len(cases)} inputs, with smoothing"


def _nll(probs: torch.Tensor, seq: list[int]) -> float:
    total = 0.0
    for a, b in itertools.pairwise(seq):
        total -= math.log(float(probs[a, b]))
    return total / (len(seq) - 1)


@exercise("3.3", "average negative log-likelihood")
def check_nll(fn):
    """Check ``nll(probs: Tensor, ids: LongTensor) -> Tensor``.

    ``probs`` is a (V, V) table whose row ``a`` is the next-token distribution after ``a``;
    ``ids`` a 1-D tensor of at least 2 token ids. Returns the mean over the ``len(ids) - 1``
    pairs of ``-ln probs[ids[t], ids[t + 1]]`` (natural log, so the unit is nats), as a 0-d
    tensor or a float. A uniform table gives ``ln(V)`` whatever the ids.
    """
    g = torch.Generator().manual_seed(5)
    rand = torch.softmax(torch.randn(6, 6, generator=g), dim=-1)
    skewed = torch.softmax(3 * torch.randn(4, 4, generator=g), dim=-1)
    cases = [
        (torch.full((5, 5), 0.2), [0, 3, 1, 4, 2]),
        (rand, [0, 1]),
        (rand, [5, 0, 2, 2, 3, 1, 4, 5]),
        (skewed, [0, 1, 2, 3, 3, 2, 1, 0]),
        (skewed, torch.randint(0, 4, (200,), generator=g).tolist()),
    ]
    for probs, seq in cases:
        ids = torch.tensor(seq)
        V = probs.shape[0]
        example = (f"a uniform {V}x{V} table" if bool((probs == probs[0, 0]).all()) else
                   f"a random {V}x{V} table") + (f", ids={seq}" if len(seq) <= 8
                                                   else f", {len(seq)} ids")
        got = call(fn, probs.clone(), ids)
        if isinstance(got, torch.Tensor):
            if got.numel() != 1:
                fail(f"nll should return one number (a 0-d tensor or a float), got a tensor of "
                     f"shape {tuple(got.shape)} for {example}: take the mean over the pairs.")
            got = got.detach().item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            fail(f"nll should return a number, got a {type(got).__name__} for {example}")
        expected = _nll(probs, seq)
        n = len(seq) - 1
        close = lambda x, y: math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-5)
        if close(got, -expected) and expected:
            fail(f"nll has the wrong sign for {example}: expected {expected:.4f}, got {got:.4f}. "
                 "ln of a probability is negative; the loss is minus that, so it is >= 0.")
        if n > 1 and close(got, expected * n):
            fail(f"nll is {n} times too big for {example}: that is the sum over the {n} pairs; "
                 "return the mean.")
        if close(got, expected / math.log(2)):
            fail(f"nll for {example} is in bits (log base 2): expected {expected:.4f} nats, got "
                 f"{got:.4f}. Use the natural log, torch.log.")
        if close(got, _nll(probs.T.contiguous(), seq)) and not close(got, expected):
            fail(f"nll for {example} reads probs[next, current]; the table is "
                 "probs[current, next]: row ids[t], column ids[t + 1].")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="nll(probs, ids)",
                     example=example)
    return f"matches -mean(ln p(next | current)) on {len(cases)} inputs"
