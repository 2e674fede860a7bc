"""Fast BPE training: the same merges as `reference.train_bpe_plain`, in pure Python.

The plain trainer recounts every pair of the whole corpus after each merge. This one counts
once and then updates only what a merge changes:

1. Count unique chunks ("words") once: "the" may occur 20,000 times but is stored once,
   with its count as a weight.
2. Lay out all words' symbols in one array as linked lists (`nxt`/`prv` indices), and keep
   for every pair its weighted count and the set of positions where it starts.
3. A merge visits only the positions of the merged pair. At each one it removes the two
   neighbouring pairs, relinks the list, and adds the two new pairs with the new token.
4. A max-heap of `(-count, pair)` finds the next pair. Counts only go down except for
   pairs containing the newest token, which are pushed fresh; an entry whose count went
   down is "stale" and is re-pushed with its current count when it reaches the top. The
   heap orders equal counts by `(a, b)`, which is the tie-break rule of `reference.best_pair`.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Mapping

from tqdm.auto import tqdm


def train_bpe(word_counts: Mapping[bytes, int], vocab_size: int, *, verbose: bool = False,
              progress: bool = True) -> dict[tuple[int, int], int]:
    """Learn BPE merges from `{word bytes: count}`; exactly `train_bpe_plain`'s result.

    Args:
        word_counts: each pre-split chunk as UTF-8 bytes, with how often it occurs.
        vocab_size: 256 byte tokens plus the number of merges to learn.
        verbose: print each merge.
        progress: show a progress bar (tqdm.auto) if training takes more than a second.

    Returns:
        `{(a, b): new_id}` in learned order; merge `i` creates id 256 + i. Fewer merges when
        the words run out of pairs.
    """
    # 1. All words in one array of symbols; nxt[i] / prv[i] link a word's symbols (-1: none).
    sym: list[int] = []
    nxt: list[int] = []
    prv: list[int] = []
    weight: list[int] = []  # the count of the word each symbol belongs to
    for word, count in word_counts.items():
        n = len(word)
        if n < 2 or count <= 0:
            continue  # a word with no pairs never changes
        start = len(sym)
        sym.extend(word)
        weight.extend([count] * n)
        nxt.extend(range(start + 1, start + n))
        nxt.append(-1)
        prv.append(-1)
        prv.extend(range(start, start + n - 1))

    # 2. Weighted pair counts, and where each pair starts.
    counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for i, j in enumerate(nxt):
        if j != -1:
            pair = (sym[i], sym[j])
            counts[pair] += weight[i]
            where[pair].add(i)

    def add(pair: tuple[int, int], i: int, w: int) -> None:
        counts[pair] += w
        where[pair].add(i)

    def remove(pair: tuple[int, int], i: int, w: int) -> None:
        counts[pair] -= w
        where[pair].discard(i)

    heap = [(-c, pair) for pair, c in counts.items()]
    heapq.heapify(heap)
    vocab = [bytes([i]) for i in range(256)]  # only for verbose printing
    merges: dict[tuple[int, int], int] = {}
    num_merges = max(vocab_size - 256, 0)
    bar = tqdm(total=num_merges, desc="BPE merges", unit="merge", delay=1.0,
               disable=not progress)
    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        count = counts.get(pair, 0)
        if count != -neg_count:  # stale: the count went down since this entry was pushed
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        new = 256 + len(merges)
        merges[pair] = new
        a, b = pair
        new_pairs = set()
        # Left to right, so that overlapping occurrences (a == b, "aaa") merge like `merge()`.
        for i in sorted(where.pop(pair)):
            j = nxt[i]
            if sym[i] != a or j == -1 or sym[j] != b:
                continue  # used up by the previous, overlapping occurrence
            w, h, k = weight[i], prv[i], nxt[j]
            if h != -1:
                remove((sym[h], a), h, w)
            if k != -1:
                remove((b, sym[k]), j, w)
            sym[i], sym[j], nxt[i] = new, -1, k  # symbol j is gone; i now holds the new token
            if k != -1:
                prv[k] = i
                add((new, sym[k]), i, w)
                new_pairs.add((new, sym[k]))
            if h != -1:
                add((sym[h], new), h, w)
                new_pairs.add((sym[h], new))
        del counts[pair]
        where.pop(pair, None)
        for p in new_pairs:  # a pair seen mid-merge may have dropped back to zero
            if counts[p] > 0:
                heapq.heappush(heap, (-counts[p], p))
            else:
                del counts[p]
                where.pop(p, None)
        if verbose:
            vocab.append(vocab[a] + vocab[b])
            print(f"merge {len(merges)}/{num_merges}: {pair} -> {new} "
                  f"{vocab[new]!r} ({-neg_count} occurrences)")
        bar.update()
    bar.close()
    return merges
