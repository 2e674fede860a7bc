"""Lesson 03 checkers: each passes the reference, explains a wrong answer, waits for a stub."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from gptlab.bigram import bigram_counts, bigram_probs, nll
from gptlab.checks.core import ExerciseFailed
from gptlab.checks.embeddings import check_bigram_probs, check_nll, check_one_hot


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 3.x: not written yet")


@pytest.mark.parametrize("checker", [check_one_hot, check_bigram_probs, check_nll])
def test_stub_is_not_done_yet(checker, capsys):
    result = checker(stub)
    assert not result and result.status == "not done"
    assert "not done yet" in capsys.readouterr().out


def _fails(checker, fn, *needles):
    with pytest.raises(ExerciseFailed) as err:
        checker(fn)
    msg = str(err.value)
    for needle in needles:
        assert needle in msg, msg
    return msg


# ----------------------------------------------------------------------------- 3.1


def test_one_hot_reference_passes(capsys):
    assert check_one_hot(lambda ids, V: F.one_hot(ids, V).float())
    assert "✅ Exercise 3.1 passed" in capsys.readouterr().out


def test_one_hot_loop_and_broadcast_solutions_pass():
    def loop(ids, vocab_size):
        flat = ids.flatten()
        out = torch.zeros(len(flat), vocab_size)
        for row, i in enumerate(flat):
            out[row, i] = 1.0
        return out.view(*ids.shape, vocab_size)

    assert check_one_hot(loop)
    assert check_one_hot(lambda ids, V: (ids[..., None] == torch.arange(V)).float())


def test_one_hot_wrong_answers_are_explained():
    _fails(check_one_hot, lambda ids, V: F.one_hot(ids, V), "dtype torch.int64", ".float()")
    _fails(check_one_hot, lambda ids, V: F.one_hot(ids, V).float().T, "transposed")
    _fails(check_one_hot, lambda ids, V: F.one_hot(ids).float(), "not the largest id + 1")
    _fails(check_one_hot, lambda ids, V: F.one_hot(ids.flatten(), V).float(),
           "keep the shape of ids")
    _fails(check_one_hot, lambda ids, V: F.one_hot((ids + 1) % V, V).float(),
           "expected", "got")

    def in_place(ids, V):
        ids.zero_()
        return F.one_hot(ids, V).float()

    _fails(check_one_hot, in_place, "changed its input")


def test_one_hot_learner_error_is_reraised(capsys):
    def only_1d(ids, V):
        out = torch.zeros(len(ids), V)
        out[torch.arange(len(ids)), ids] = 1.0  # fails for 2-D ids
        return out

    with pytest.raises(IndexError):  # the learner's own error, re-raised
        check_one_hot(only_1d)
    assert "your code raised" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 3.2


def test_bigram_probs_reference_passes(capsys):
    assert check_bigram_probs(bigram_probs)
    assert "✅ Exercise 3.2 passed" in capsys.readouterr().out


def _probs_with(ids, V, smoothing=1.0, *, transpose=False, dim=1, add=True):
    counts = bigram_counts(ids, V).float()
    if add:
        counts = counts + smoothing
    if transpose:
        counts = counts.T
    return counts / counts.sum(dim=dim, keepdim=True)


def _integer_division(ids, V, smoothing=1.0):
    counts = bigram_counts(ids, V) + int(smoothing)  # stays int64
    return counts // counts.sum(dim=1, keepdim=True)


def test_bigram_probs_wrong_answers_are_explained():
    _fails(check_bigram_probs, lambda i, V, smoothing=1.0: _probs_with(i, V, smoothing,
                                                                      transpose=True),
           "transposed")
    _fails(check_bigram_probs, lambda i, V, smoothing=1.0: _probs_with(i, V, smoothing,
                                                                      add=False),
           "ignores smoothing")
    _fails(check_bigram_probs, lambda i, V, smoothing=1.0: _probs_with(i, V, smoothing, dim=0),
           "columns", "dim=1")
    _fails(check_bigram_probs, _integer_division, "dtype torch.int64", ".float()")
    _fails(check_bigram_probs, lambda i, V, smoothing=1.0: bigram_counts(i, V).float()
           + smoothing, "rows of bigram_probs should each sum to 1")
    _fails(check_bigram_probs, lambda i, V, smoothing=1.0: bigram_probs(i, V, smoothing)[:-1],
           "expected shape")
    # a default other than 1.0 is wrong on the first input, which uses the default
    _fails(check_bigram_probs, lambda i, V, smoothing=0.5: bigram_probs(i, V, smoothing),
           "smoothing=1.0 (the default)")


# ----------------------------------------------------------------------------- 3.3


def test_nll_reference_passes(capsys):
    assert check_nll(nll)
    assert check_nll(lambda p, ids: float(-p[ids[:-1], ids[1:]].log().mean()))  # a float is fine
    assert "✅ Exercise 3.3 passed" in capsys.readouterr().out


def test_nll_wrong_answers_are_explained():
    _fails(check_nll, lambda p, ids: p[ids[:-1], ids[1:]].log().mean(), "wrong sign")
    _fails(check_nll, lambda p, ids: -p[ids[:-1], ids[1:]].log().sum(), "times too big",
           "mean")
    _fails(check_nll, lambda p, ids: -p[ids[:-1], ids[1:]].log2().mean(), "bits")
    _fails(check_nll, lambda p, ids: -p[ids[1:], ids[:-1]].log().mean(), "probs[next, current]")
    _fails(check_nll, lambda p, ids: -p[ids[:-1], ids[1:]].log(), "one number")
    _fails(check_nll, lambda p, ids: -p[ids[:-1], ids[:-1]].log().mean(), "expected", "got")
    _fails(check_nll, lambda p, ids: "2.3", "should return a number")


def test_uniform_table_gives_ln_v():
    assert nll(torch.full((5, 5), 0.2), torch.tensor([0, 3, 1])).item() == pytest.approx(
        math.log(5))
