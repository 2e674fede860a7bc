"""The plain, obviously-correct byte-pair encoding: the "slow version" of the lesson.

Everything here is written for reading, not speed (minbpe style). The fast code in
`gptlab.tokenizers.trainer` and `BPETokenizer` must give exactly the same results, and the
tests check that it does.

Tie-break rule (used everywhere in gptlab): when several pairs are equally frequent, the pair
that is smallest as a tuple of token ids `(a, b)` is merged first. So training never depends
on dictionary order or on the order of the text's chunks.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import regex


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None
              ) -> dict[tuple[int, int], int]:
    """Count how often each pair of neighbouring ids occurs in `ids`.

    Pass `counts` to add to an existing dict (to count over many chunks).

    >>> get_stats([1, 2, 3, 1, 2])
    {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in itertools.pairwise(ids):  # (ids[0], ids[1]), (ids[1], ids[2]), ...
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Replace every occurrence of `pair` in `ids` by the new token `idx`, left to right.

    >>> merge([1, 2, 3, 1, 2], (1, 2), 4)
    [4, 3, 4]
    >>> merge([5, 5, 5], (5, 5), 6)  # overlapping occurrences: the leftmost wins
    [6, 5]
    """
    out = []
    i = 0
    while i < len(ids):
        if i < len(ids) - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def split_chunks(text: str, pattern: str | None) -> list[str]:
    """Pre-split `text` into chunks with the regex `pattern` (None: the whole text is one chunk).

    BPE never merges across a chunk boundary, so " dog" and "dog." stay apart.
    """
    if pattern is None:
        return [text] if text else []
    return regex.findall(pattern, text)


def best_pair(counts: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The pair to merge next: the most frequent one; on a tie, the smallest `(a, b)`."""
    return min(counts, key=lambda pair: (-counts[pair], pair))


def train_bpe_plain(text_or_chunks: str | Iterable[str], vocab_size: int,
                    pattern: str | None = None, verbose: bool = False
                    ) -> dict[tuple[int, int], int]:
    """Learn BPE merges the plain way: recount every pair after every merge.

    Args:
        text_or_chunks: a text, or several texts (each is split on its own).
        vocab_size: 256 byte tokens plus the number of merges to learn.
        pattern: regex that pre-splits each text into chunks (see `split_chunks`); pairs are
            counted within chunks, never across a chunk boundary.
        verbose: print each merge.

    Returns:
        `{(a, b): new_id}` in the order the merges were learned; merge `i` creates id 256 + i.
        Fewer than `vocab_size - 256` merges when the text runs out of pairs.
    """
    texts = [text_or_chunks] if isinstance(text_or_chunks, str) else list(text_or_chunks)
    chunks = [list(c.encode("utf-8")) for t in texts for c in split_chunks(t, pattern)]
    merges: dict[tuple[int, int], int] = {}
    for idx in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for ids in chunks:
            get_stats(ids, counts)
        if not counts:
            break  # every chunk is a single token: nothing left to merge
        pair = best_pair(counts)
        chunks = [merge(ids, pair, idx) for ids in chunks]
        merges[pair] = idx
        if verbose:
            print(f"merge {idx - 255}/{vocab_size - 256}: {pair} -> {idx} "
                  f"({counts[pair]} occurrences)")
    return merges


def encode_plain(text: str, merges: dict[tuple[int, int], int],
                 pattern: str | None = None) -> list[int]:
    """Encode `text` with learned `merges` the plain way (byte ids 0..255, no special tokens).

    In each chunk, repeatedly merge the pair that was learned first (the lowest new id),
    until no learned pair is left.
    """
    out: list[int] = []
    for chunk in split_chunks(text, pattern):
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            counts = get_stats(ids)
            pair = min(counts, key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break  # no learned pair left in this chunk
            ids = merge(ids, pair, merges[pair])
        out.extend(ids)
    return out


def decode_plain(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Decode ids from `encode_plain`: build each token's bytes from its two parents."""
    vocab = {i: bytes([i]) for i in range(256)}
    for (a, b), idx in merges.items():  # in learned order, so parents exist already
        vocab[idx] = vocab[a] + vocab[b]
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
