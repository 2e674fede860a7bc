"""Checkers for lesson 02 (tokenization): the pieces of byte-pair encoding.

Each checker compares the learner's function with the plain reference in
:mod:`gptlab.tokenizers.reference` on several inputs, Unicode included, and explains the
usual mistakes.
"""

from __future__ import annotations

import random

from gptlab.checks.core import (
    LearnerError,
    call,
    exercise,
    expect_equal,
    expect_true,
    expect_type,
    fail,
    short_repr,
)
from gptlab.tokenizers.reference import (
    decode_plain,
    encode_plain,
    get_stats,
    merge,
    train_bpe_plain,
)

__all__ = ["check_decode", "check_encode", "check_get_stats", "check_merge"]


def _utf8(text: str) -> list[int]:
    return list(text.encode("utf-8"))


def _is_int_list(x: object) -> bool:
    return isinstance(x, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in x)


# ----------------------------------------------------------------------------- 2.1


def _stats_cases() -> list[list[int]]:
    rng = random.Random(0)
    return [
        [],
        [7],
        [1, 2, 3, 1, 2],
        [5, 5, 5, 5],  # overlapping pairs all count: (5, 5) three times
        _utf8("aaabdaaabac"),
        _utf8("héllo wörld 😀😀"),  # multi-byte characters
        [rng.randrange(300) for _ in range(60)],  # ids above 255: merged tokens
    ]


@exercise("2.1", "count adjacent pairs")
def check_get_stats(fn):
    """Check ``get_stats(ids: list[int]) -> dict[tuple[int, int], int]``.

    Every pair of neighbours ``(ids[i], ids[i + 1])`` is counted, overlapping ones included
    (``[5, 5, 5]`` has the pair ``(5, 5)`` twice); keys are tuples. A ``Counter`` is fine.
    Compared with ``gptlab.tokenizers.reference.get_stats``; the input must not change.
    """
    cases = _stats_cases()
    for ids in cases:
        arg = list(ids)
        got = call(fn, arg)
        expect_true(arg == ids, f"get_stats changed the list it was given ({short_repr(ids)} "
                    f"became {short_repr(arg)}); only read it")
        expect_type(got, dict, "get_stats(ids)", ids)
        expected = get_stats(ids)
        bad_keys = [k for k in got if not (isinstance(k, tuple) and len(k) == 2)]
        if bad_keys:
            fail(f"get_stats({short_repr(ids)}) has the key {bad_keys[0]!r}: every key should "
                 "be a tuple (a, b) of two neighbouring ids, e.g. (ids[i], ids[i + 1])")
        got = dict(got)
        if ids == [5, 5, 5, 5] and got.get((5, 5)) == 2:
            fail("get_stats([5, 5, 5, 5]) counts (5, 5) twice, expected 3 times: count every "
                 "position i, overlapping pairs included (do not jump 2 ahead)")
        if ids and (ids[-1], ids[0]) in got and (ids[-1], ids[0]) not in expected:
            fail(f"get_stats({short_repr(ids)}) counts the pair {(ids[-1], ids[0])}, last id "
                 "then first id, which are not neighbours: stop at the last pair "
                 "(zip(ids, ids[1:]) does)")
        expect_equal(got, expected, "get_stats(ids)", ids)
    return f"pair counts match the reference on {len(cases)} inputs, Unicode bytes included"


# ----------------------------------------------------------------------------- 2.2


def _merge_cases() -> list[tuple[list[int], tuple[int, int], int]]:
    hello = _utf8("héllo héllo")  # é is the two bytes (195, 169)
    return [
        ([1, 2, 3, 1, 2], (1, 2), 4),
        ([3, 1, 2], (1, 2), 9),  # the pair at the very end
        ([1, 2], (1, 2), 7),
        ([5, 5, 5], (5, 5), 6),  # overlapping: the leftmost occurrence wins
        ([5, 5, 5, 5], (5, 5), 6),
        ([2, 1, 2, 1], (1, 2), 8),
        ([1, 2, 3], (3, 4), 9),  # no occurrence: nothing changes
        ([], (1, 2), 3),
        ([4], (4, 4), 5),
        (hello, (195, 169), 256),
        (hello, (108, 108), 257),
    ]


@exercise("2.2", "merge a pair into a new token")
def check_merge(fn):
    """Check ``merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]``.

    Returns a new list where every occurrence of ``pair`` is replaced by ``idx``, scanning
    left to right (``[5, 5, 5]`` with ``(5, 5)`` gives ``[6, 5]``). Compared with
    ``gptlab.tokenizers.reference.merge``; the input must not change.
    """
    cases = _merge_cases()
    for ids, pair, idx in cases:
        arg = list(ids)
        example = f"ids={short_repr(ids)}, pair={pair}, idx={idx}"
        got = call(fn, arg, pair, idx)
        expect_true(arg == ids, f"merge changed the list it was given ({example}); build and "
                    "return a new list instead")
        expected = merge(ids, pair, idx)
        if isinstance(got, (list, tuple)) and len(got) == len(expected) - 1 \
                and list(got) == expected[:-1]:
            fail(f"merge({example}) lost the last id: got {short_repr(got)}, expected "
                 f"{short_repr(expected)}. When i is the last position there is no pair "
                 "left, but ids[i] must still be appended")
        expect_type(got, list, "merge(ids, pair, idx)", example)
        if ids == [1, 2, 3, 1, 2] and got == [4, 3, 1, 2]:
            fail("merge([1, 2, 3, 1, 2], (1, 2), 4) replaced only the first occurrence: "
                 "expected [4, 3, 4]. Replace every occurrence")
        if ids[:3] == [5, 5, 5] and got != expected:
            fail(f"merge({example}) gave {got}, expected {expected}: scan left to right and, "
                 "after a merge, jump over both ids (i += 2), so that one id is never part of "
                 "two merged pairs")
        expect_equal(got, expected, "merge(ids, pair, idx)", example)
    return f"matches the reference on {len(cases)} inputs, overlapping pairs included"


# ----------------------------------------------------------------------------- 2.3

_TRAIN_TEXT = ("the cat sat on the mat; the cat ate the rat. " * 3
               + "naïve café, naïve café! 😀😀 " * 2 + "aaaaaaaa bbbb")


def _trained_merges() -> dict[tuple[int, int], int]:
    return train_bpe_plain(_TRAIN_TEXT, 256 + 40)


def _encode_cases() -> list[tuple[str, dict[tuple[int, int], int]]]:
    merges = _trained_merges()
    chained = {(97, 97): 256, (256, 256): 257}  # "aa", then "aaaa"
    shuffled = dict(sorted(merges.items(), key=lambda kv: -kv[1]))  # last learned first
    return [
        ("", merges),
        ("a", merges),
        ("aaaa", chained),
        ("aaaaa", chained),
        ("aaa", chained),
        ("the cat sat on the mat", merges),
        ("naïve café 😀", merges),
        ("xyz? 12 ß", merges),  # nothing learned applies
        (_TRAIN_TEXT, merges),
        ("the rat ate the cat 😀 café", shuffled),  # the same merges, dict in another order
    ]


@exercise("2.3", "encode text with learned merges")
def check_encode(fn):
    """Check ``encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]``.

    ``text`` becomes its UTF-8 bytes, then the learned merges are applied in rank order: the
    lowest new id first, whatever order the dict is in. Compared with
    ``gptlab.tokenizers.reference.encode_plain`` (no pre-splitting).
    """
    cases = _encode_cases()
    for k, (text, merges) in enumerate(cases):
        arg = dict(merges)
        example = f"text={short_repr(text)} and {len(merges)} merges"
        got = call(fn, text, arg)
        expect_true(arg == merges, f"encode changed the merges dict it was given ({example})")
        expected = encode_plain(text, merges)
        if not _is_int_list(got):
            fail(f"encode({example}) should return a list of int ids, got "
                 f"{type(got).__name__} {short_repr(got)}")
        if got == _utf8(text) and expected != got:
            fail(f"encode({example}) returned the raw UTF-8 bytes {short_repr(got)}: no merge "
                 f"was applied, expected {short_repr(expected)}")
        if got != expected and k == len(cases) - 1:
            fail(f"encode({example}) gave {short_repr(got)}, expected {short_repr(expected)}. "
                 "Here the merges dict lists the last-learned merge first: apply the merges "
                 "by increasing new id (sorted(merges.items(), key=lambda kv: kv[1])), not in "
                 "the dict's order")
        if got != expected and text == "aaaa":
            fail(f"encode('aaaa', {{(97, 97): 256, (256, 256): 257}}) gave {got}, expected "
                 f"{expected}: a merge can join tokens made by earlier merges, so apply the "
                 "merges one after the other to the ids the previous merges produced")
        expect_equal(got, expected, "encode(text, merges)", example)
    return (f"matches the reference on {len(cases)} texts, Unicode and merges in any order "
            "included")


# ----------------------------------------------------------------------------- 2.4


def _vocab(merges: dict[tuple[int, int], int]) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in sorted(merges.items(), key=lambda kv: kv[1]):
        vocab[idx] = vocab[a] + vocab[b]
    return vocab


def _decode_cases() -> list[tuple[list[int], dict[int, bytes], str, str]]:
    """(ids, vocab, what the case is about, expected text)."""
    merges = _trained_merges()
    vocab = _vocab(merges)
    smile = _utf8("😀")  # 4 bytes
    cases = []
    for text in ("", "hello", "the cat sat on the mat", "naïve café 😀!", "日本語"):
        ids = encode_plain(text, merges)
        cases.append((ids, vocab, repr(text), decode_plain(ids, merges)))
    cases.append((smile[:2], vocab, "half an emoji: not valid UTF-8",
                  decode_plain(smile[:2], merges)))
    cases.append(([0x80, 104], vocab, "a lone continuation byte", decode_plain([0x80, 104], {})))
    # A character split over two tokens: decoding each token on its own would break it.
    split_vocab = {**_vocab({}), 256: bytes(smile[:2]), 257: bytes(smile[2:])}
    cases.append(([104, 105, 256, 257], split_vocab, "an emoji cut into two tokens", "hi😀"))
    return cases


@exercise("2.4", "decode ids back to text")
def check_decode(fn):
    """Check ``decode(ids: list[int], vocab: dict[int, bytes]) -> str``.

    Join the bytes of all tokens, then decode them once as UTF-8 with ``errors="replace"``
    (bytes that are not valid UTF-8 become U+FFFD '�'). Compared with the reference
    (``decode_plain``'s rule) on several inputs, Unicode and broken characters included.
    """
    cases = _decode_cases()
    for ids, vocab, about, expected in cases:
        example = f"ids={short_repr(ids)} ({about})"
        try:
            got = call(fn, list(ids), vocab)
        except LearnerError as err:
            if isinstance(err.original, UnicodeDecodeError):
                fail(f"decode({example}) raised UnicodeDecodeError: {err.original}. Some id "
                     "sequences are not valid UTF-8 (a character cut between tokens, or a "
                     "model's bad guess); decode with errors='replace' so they become '�'")
            raise
        if isinstance(got, bytes):
            fail(f"decode({example}) returned bytes {short_repr(got)}: decode them into a str "
                 "with .decode('utf-8', errors='replace')")
        expect_type(got, str, "decode(ids, vocab)", example)
        per_token = "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
        if got != expected and got == per_token:
            fail(f"decode({example}) gave {got!r}, expected {expected!r}: a character can be "
                 "split between two tokens, so join the bytes of all tokens first "
                 "(b''.join(...)) and decode once at the end")
        latin = b"".join(vocab[i] for i in ids).decode("latin-1")
        if got != expected and got == latin:
            fail(f"decode({example}) gave {got!r}, expected {expected!r}: decode the bytes as "
                 "UTF-8, not Latin-1")
        expect_equal(got, expected, "decode(ids, vocab)", example)
    return f"matches the reference on {len(cases)} inputs, broken characters included"
