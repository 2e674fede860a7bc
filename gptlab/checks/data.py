"""Checkers for lesson 01 (data): cleaning, deduplicating and splitting text.

The expected answers are computed here, not with ``gptlab.data``, so each checker states
exactly the behaviour it asks for.
"""

from __future__ import annotations

from gptlab.checks.core import call, exercise, expect_equal, expect_type, fail

__all__ = ["check_dedup", "check_normalize_newlines", "check_split"]


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_NEWLINE_CASES = [
    "",
    "no newline at all",
    "unix\nlines\n",
    "windows\r\nlines\r\n",
    "old mac\rlines\r",
    "mixed\r\nall\rthree\nkinds",
    "blank lines\r\n\r\nstay blank\r\r\n",
    "\r\n\r\r\n\n",
    "unicode ✓ — naïve\r\nçà\r",
]


@exercise("1.1", "normalize newlines")
def check_normalize_newlines(fn):
    """Check ``normalize_newlines(text: str) -> str``.

    Windows (``\\r\\n``) and old Mac (``\\r``) line endings become ``\\n``; nothing else
    changes. ``"a\\r\\nb"`` -> ``"a\\nb"``, ``"a\\rb"`` -> ``"a\\nb"``, ``"\\r\\r\\n"`` ->
    ``"\\n\\n"`` (a lone ``\\r`` followed by a Windows ending).
    """
    for text in _NEWLINE_CASES:
        got = call(fn, text)
        expect_type(got, str, "normalize_newlines(text)", text)
        expected = _normalize_newlines(text)
        if got != expected and got == text.replace("\r", "\n"):
            fail(f"normalize_newlines({text!r}) gave {got!r}, expected {expected!r}: a Windows "
                 "ending \\r\\n became two newlines. Replace '\\r\\n' first, then the lone "
                 "'\\r' that are left.")
        expect_equal(got, expected, "normalize_newlines(text)", text)
    return f"all {len(_NEWLINE_CASES)} inputs come out with only \\n line endings"


def _dedup(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


_DEDUP_CASES = [
    [],
    ["only one"],
    ["a", "b", "a"],
    ["b", "a", "b", "c", "a", "b"],
    ["same", "same", "same"],
    ["", "x", "", "y"],
    ["Hello", "hello", "hello ", "Hello"],  # exact duplicates only: case and spaces count
    [f"line {i % 7}" for i in range(30)],
]


@exercise("1.2", "remove duplicate lines")
def check_dedup(fn):
    """Check ``dedup(lines: list[str]) -> list[str]``.

    Returns a new list with each line kept at its first occurrence, in the original order;
    only exact duplicates are removed (``"Hello"``, ``"hello"`` and ``"hello "`` are
    different lines). The input list is not modified.
    """
    for lines in _DEDUP_CASES:
        arg = list(lines)
        got = call(fn, arg)
        if arg != lines:
            fail(f"dedup changed the list it was given: {lines!r} became {arg!r}. Build and "
                 "return a new list instead.")
        expect_type(got, list, "dedup(lines)", lines)
        expected = _dedup(lines)
        if got != expected and sorted(got) == sorted(expected):
            fail(f"dedup({lines!r}) gave {got!r}, expected {expected!r}: the right lines, "
                 "in the wrong order. Keep each line where it first appears (a set does not "
                 "keep order; remember the lines you have seen in a set, and append to a list).")
        expect_equal(got, expected, "dedup(lines)", lines)
    return f"first occurrences kept, in order, on {len(_DEDUP_CASES)} inputs"


_SPLIT_CASES = [
    ("abcdefghij", 0.1),
    ("abcdefghij", 0.25),
    ("abcdefghij", 0.5),
    ("abcdefghij", 0.0),
    ("0123456789" * 13 + "xyz", 0.3),
    ("To be, or not to be: that is the question.\nWhether 'tis nobler…", 0.2),
    ("ab", 0.9),
]


@exercise("1.3", "split into train and validation")
def check_split(fn):
    """Check ``split(text: str, val_fraction: float) -> tuple[str, str]``.

    Returns ``(train, val)``: the first ``n = int(len(text) * (1 - val_fraction))``
    characters, then the rest. The pieces are contiguous (no shuffling: neighbouring
    characters belong together), train comes first, they do not overlap, and
    ``train + val == text``.
    """
    for text, frac in _SPLIT_CASES:
        example = (text, frac)
        got = call(fn, text, frac)
        expect_type(got, tuple, "split(text, val_fraction)", example)
        if len(got) != 2:
            fail(f"split(text, val_fraction) should return two pieces (train, val), got "
                 f"{len(got)} for input {example!r}")
        train, val = got
        expect_type(train, str, "train (the first piece)", example)
        expect_type(val, str, "val (the second piece)", example)
        n = int(len(text) * (1 - frac))
        if train + val != text:
            if val + train == text:
                fail(f"the pieces are swapped for input {example!r}: return (train, val), with "
                     "train = the beginning of the text.")
            fail(f"train + val should give back the text for input {example!r}, got "
                 f"train={train!r}, val={val!r}. Cut the text in one place: text[:n], text[n:] "
                 "(no shuffling, no overlap, nothing dropped).")
        if len(train) != n:
            fail(f"train should hold the first n = int(len(text) * (1 - val_fraction)) = "
                 f"int({len(text)} * (1 - {frac})) = {n} characters, got {len(train)} "
                 f"for input {example!r}")
        expect_equal((train, val), (text[:n], text[n:]), "(train, val)", example)
    return f"contiguous train/val pieces of the right sizes on {len(_SPLIT_CASES)} inputs"
