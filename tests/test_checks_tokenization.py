"""Lesson 02 checkers: each passes the reference (and other right answers), explains and
raises on a wrong answer, and says "not done yet" for a stub."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest

from gptlab.checks.tokenization import (
    check_decode,
    check_encode,
    check_get_stats,
    check_merge,
)
from gptlab.tokenizers import reference


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 2.0: stub")


def expect_failure(capsys, checker, fn, *words):
    """``checker(fn)`` raises an AssertionError whose message (and the printed text) contains
    every word."""
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 2."), out
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


@pytest.mark.parametrize("checker", [check_get_stats, check_merge, check_encode, check_decode])
def test_stub_is_not_done_yet(capsys, checker):
    assert not checker(stub)
    assert "not done yet" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 2.1


def test_get_stats_passes_reference_and_counter(capsys):
    assert check_get_stats(lambda ids: reference.get_stats(ids))
    assert "✅ Exercise 2.1 passed" in capsys.readouterr().out
    assert check_get_stats(lambda ids: Counter(pairwise(ids)))


def test_get_stats_wrong_answers(capsys):
    def non_overlapping(ids):
        counts = {}
        for i in range(0, len(ids) - 1, 2):
            counts[ids[i], ids[i + 1]] = counts.get((ids[i], ids[i + 1]), 0) + 1
        return counts

    def wrap_around(ids):
        return dict(Counter(zip(ids, ids[1:] + ids[:1])))

    def list_keys(ids):
        return {str([a, b]): n for (a, b), n in Counter(pairwise(ids)).items()}

    def off_by_one(ids):
        return dict(Counter(pairwise(ids[:-1])))

    def mutates(ids):
        counts = dict(Counter(pairwise(ids)))
        ids.reverse()
        return counts

    expect_failure(capsys, check_get_stats, non_overlapping, "expected")
    expect_failure(capsys, check_get_stats, wrap_around, "not neighbours")
    expect_failure(capsys, check_get_stats, list_keys, "should be a tuple")
    expect_failure(capsys, check_get_stats, off_by_one, "get_stats(ids)")
    expect_failure(capsys, check_get_stats, mutates, "changed the list")
    expect_failure(capsys, check_get_stats, lambda ids: list(pairwise(ids)), "dict")


def test_get_stats_overlap_hint(capsys):
    def skip_after_match(ids):  # counts (5, 5) in [5, 5, 5, 5] twice
        counts, i = {}, 0
        while i < len(ids) - 1:
            pair = (ids[i], ids[i + 1])
            counts[pair] = counts.get(pair, 0) + 1
            i += 2 if pair[0] == pair[1] else 1
        return counts

    expect_failure(capsys, check_get_stats, skip_after_match, "overlapping")


def test_get_stats_crash_is_reported(capsys):
    with pytest.raises(ZeroDivisionError):
        check_get_stats(lambda ids: 1 / 0)
    assert "raised ZeroDivisionError" in capsys.readouterr().out


# ----------------------------------------------------------------------------- 2.2


def test_merge_passes_reference(capsys):
    assert check_merge(reference.merge)
    assert "✅ Exercise 2.2 passed" in capsys.readouterr().out


def test_merge_wrong_answers(capsys):
    def drops_last(ids, pair, idx):
        out, i = [], 0
        while i < len(ids) - 1:
            if (ids[i], ids[i + 1]) == tuple(pair):
                out.append(idx)
                i += 2
            else:
                out.append(ids[i])
                i += 1
        return out

    def no_skip(ids, pair, idx):
        out = []
        for i in range(len(ids)):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == tuple(pair):
                out.append(idx)
            elif not (i > 0 and (ids[i - 1], ids[i]) == tuple(pair)):
                out.append(ids[i])
        return out

    def first_only(ids, pair, idx):
        for i in range(len(ids) - 1):
            if (ids[i], ids[i + 1]) == tuple(pair):
                return ids[:i] + [idx] + ids[i + 2:]
        return list(ids)

    def in_place(ids, pair, idx):
        ids[:] = reference.merge(ids, pair, idx)
        return ids

    def as_tuple(ids, pair, idx):
        return tuple(reference.merge(ids, pair, idx))

    expect_failure(capsys, check_merge, drops_last, "lost the last id")
    expect_failure(capsys, check_merge, no_skip, "i += 2")
    expect_failure(capsys, check_merge, first_only, "only the first occurrence")
    expect_failure(capsys, check_merge, in_place, "changed the list")
    expect_failure(capsys, check_merge, as_tuple, "expected a list")


# ----------------------------------------------------------------------------- 2.3


def encode_loop(text, merges):
    ids = list(text.encode("utf-8"))
    for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
        ids = reference.merge(ids, pair, idx)
    return ids


def encode_minbpe(text, merges):
    ids = list(text.encode("utf-8"))
    while len(ids) >= 2:
        stats = reference.get_stats(ids)
        pair = min(stats, key=lambda p: merges.get(p, float("inf")))
        if pair not in merges:
            break
        ids = reference.merge(ids, pair, merges[pair])
    return ids


def test_encode_passes_reference_and_both_loops(capsys):
    assert check_encode(reference.encode_plain)
    assert "✅ Exercise 2.3 passed" in capsys.readouterr().out
    assert check_encode(encode_loop)
    assert check_encode(encode_minbpe)


def test_encode_wrong_answers(capsys):
    def dict_order(text, merges):
        ids = list(text.encode("utf-8"))
        for pair, idx in merges.items():
            ids = reference.merge(ids, pair, idx)
        return ids

    def no_merges(text, merges):
        return list(text.encode("utf-8"))

    def on_bytes_only(text, merges):  # each merge applied to the original bytes only
        ids = list(text.encode("utf-8"))
        for pair, idx in sorted(merges.items(), key=lambda kv: kv[1]):
            if pair[0] < 256 and pair[1] < 256:
                ids = reference.merge(ids, pair, idx)
        return ids

    def characters(text, merges):
        return [ord(c) for c in text]

    def as_bytes(text, merges):
        return bytes(encode_loop(text, merges)) if all(i < 256 for i in
                                                        encode_loop(text, merges)) else "?"

    expect_failure(capsys, check_encode, dict_order, "increasing new id")
    expect_failure(capsys, check_encode, no_merges, "no merge")
    expect_failure(capsys, check_encode, on_bytes_only, "earlier merges")
    expect_failure(capsys, check_encode, characters, "expected")
    expect_failure(capsys, check_encode, as_bytes, "list of int")


# ----------------------------------------------------------------------------- 2.4


def decode_ref(ids, vocab):
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def test_decode_passes_reference(capsys):
    assert check_decode(decode_ref)
    assert "✅ Exercise 2.4 passed" in capsys.readouterr().out


def test_decode_wrong_answers(capsys):
    def strict(ids, vocab):
        return b"".join(vocab[i] for i in ids).decode("utf-8")

    def per_token(ids, vocab):
        return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)

    def latin(ids, vocab):
        return b"".join(vocab[i] for i in ids).decode("latin-1")

    def raw(ids, vocab):
        return b"".join(vocab[i] for i in ids)

    def ignore(ids, vocab):
        return b"".join(vocab[i] for i in ids).decode("utf-8", errors="ignore")

    expect_failure(capsys, check_decode, strict, "errors='replace'")
    expect_failure(capsys, check_decode, per_token, "join the bytes")
    expect_failure(capsys, check_decode, latin, "not Latin-1")
    expect_failure(capsys, check_decode, raw, "returned bytes")
    expect_failure(capsys, check_decode, ignore, "expected")
