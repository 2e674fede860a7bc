"""Byte-level BPE tokenizer (minbpe's RegexTokenizer): train, encode, decode, save, GPT-2.

How text becomes ids:
1. Special tokens ("<|endoftext|>") are cut out first and get their own ids.
2. A regex pre-splits the rest into chunks (words, numbers, punctuation, whitespace runs).
3. Each chunk becomes UTF-8 bytes, one token per byte, and learned merges are applied,
   lowest rank first, until none applies. Merges never cross a chunk boundary.

Token ids: 0..255 are the 256 byte tokens, merge `r` creates id 256 + r, and special tokens
come last. A trained tokenizer gives byte `b` the id `b`; GPT-2 orders its byte tokens
differently, so the id of each byte is stored explicitly (`byte_ids`).

Lone surrogates: a Python str may hold surrogate code points ("\\ud800") that UTF-8 cannot
encode. `encode` and `train` first apply `clean_surrogates` (tiktoken's rule): a surrogate
pair written as two code points becomes the character it stands for, and a lone surrogate
becomes U+FFFD. So `decode(encode(s)) == clean_surrogates(s)`, which is `s` for any string
without surrogates.
"""

from __future__ import annotations

import heapq
import itertools
import os
import re
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import regex

from gptlab.tokenizers.base import (
    Tokenizer,
    as_id_list,
    atomic_write_text,
    check_ids,
    register,
)
from gptlab.tokenizers.trainer import train_bpe

GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT4_SPLIT_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
                      r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}

AllowedSpecial = Literal["none_raise", "all", "none"] | set[str] | frozenset[str]

_CACHE_MAX_ENTRIES = 200_000  # chunk -> ids cache of encode; cleared when full
_CACHE_MAX_CHUNK = 1_000  # longer chunks are rare and are not cached


def clean_surrogates(text: str) -> str:
    """Make `text` encodable as UTF-8 (tiktoken's rule).

    A surrogate pair written as two code points becomes the character it stands for, and a
    lone surrogate becomes U+FFFD. Text without surrogates is returned unchanged.

    >>> clean_surrogates("a\\ud800b"), clean_surrogates("\\ud83d\\ude00")
    ('a\ufffdb', '😀')
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def bpe_merge(ids: list[int], merges: dict[tuple[int, int], int]) -> list[int]:
    """Apply `merges` to one chunk: always merge the lowest-rank pair present, leftmost first.

    Same result as `reference.encode_plain`'s loop, in O(n log n): the chunk is a linked list
    and a heap holds `(new id, position)` of every mergeable pair (a lower new id means a
    lower rank). Merging creates only pairs of higher rank, since a token is learned before
    any merge that uses it, so popping in heap order is exactly the plain order.
    `ids` is used as scratch space: pass a list you do not need any more.
    """
    n = len(ids)
    if n < 2:
        return ids
    nxt = list(range(1, n + 1))
    nxt[-1] = -1
    prv = list(range(-1, n - 1))
    get = merges.get
    heap = [(new, i) for i, pair in enumerate(itertools.pairwise(ids)) if (new := get(pair))]
    heapq.heapify(heap)
    while heap:
        new, i = heapq.heappop(heap)
        j = nxt[i]
        if j == -1 or ids[i] == -1 or get((ids[i], ids[j])) != new:
            continue  # stale: this position was merged into something else meanwhile
        k = nxt[j]
        ids[i], ids[j], nxt[i] = new, -1, k  # position j is gone (-1), i holds the new token
        if k != -1:
            prv[k] = i
            if r := get((new, ids[k])):
                heapq.heappush(heap, (r, i))
        if (h := prv[i]) != -1 and (r := get((ids[h], new))):
            heapq.heappush(heap, (r, h))
    return [t for t in ids if t != -1]


def render_token(token: bytes) -> str:
    """Token bytes as readable text: invalid UTF-8 as \\xNN, control characters escaped."""
    text = token.decode("utf-8", errors="backslashreplace")
    if text.isprintable():  # the common case, checked fast
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch).startswith("C") else ch for ch in text)


@register
class BPETokenizer(Tokenizer):
    """Byte-level byte-pair-encoding tokenizer with regex pre-splitting and special tokens.

    >>> tok = BPETokenizer(pattern="gpt2").train("the cat and the hat", vocab_size=260)
    >>> tok.decode(tok.encode("the hat"))
    'the hat'

    Args:
        pattern: "gpt2", "gpt4" (cl100k), None (no pre-split: the text is one chunk), or a
            regex of your own.
        special_tokens: strings such as "<|endoftext|>" that get their own ids after the
            merges. Training ignores them (text is split around them).
    """

    format_name = "gptlab-bpe-tokenizer"

    def __init__(self, pattern: str | None = "gpt2",
                 special_tokens: Iterable[str] | None = None) -> None:
        self.pattern_name, self.pattern = _resolve_pattern(pattern)
        self._regex = regex.compile(self.pattern) if self.pattern is not None else None
        specials = [special_tokens] if isinstance(special_tokens, str) else \
            list(special_tokens or [])
        if len(set(specials)) != len(specials):
            raise ValueError(f"special_tokens {specials} lists a token twice: list each once")
        self._set_state(list(range(256)), {}, {s: 256 + i for i, s in enumerate(specials)})

    def _set_state(self, byte_ids: list[int], merges: dict[tuple[int, int], int],
                   special_tokens: dict[str, int]) -> None:
        """Check and install a vocabulary; every way of building a tokenizer ends here."""
        if sorted(byte_ids) != list(range(256)):
            raise ValueError("byte_ids must list the ids 0..255 in some order")
        for rank, ((a, b), new) in enumerate(merges.items()):
            if not (new == 256 + rank and isinstance(a, int) and isinstance(b, int)
                    and 0 <= a < new and 0 <= b < new):
                raise ValueError(f"merge {rank} ({a}, {b}) -> {new} is invalid: merge r must "
                                 f"join two earlier tokens into id 256 + r = {256 + rank}")
        n = 256 + len(merges)
        for s in special_tokens:
            if not isinstance(s, str) or not s or clean_surrogates(s) != s:
                raise ValueError(f"special token {s!r} must be a non-empty str without "
                                 "surrogate code points")
        if sorted(special_tokens.values()) != list(range(n, n + len(special_tokens))):
            raise ValueError(f"special token ids {sorted(special_tokens.values())} must be "
                             f"distinct and follow the merges, from id {n} on")
        vocab = [b""] * (n + len(special_tokens))
        for byte, i in enumerate(byte_ids):
            vocab[i] = bytes([byte])
        for (a, b), new in merges.items():  # in rank order, so both parents exist already
            vocab[new] = vocab[a] + vocab[b]
        for s, i in special_tokens.items():
            vocab[i] = s.encode("utf-8")
        self._byte_ids = list(byte_ids)
        self._byte_table = bytes(byte_ids)  # bytes.translate() turns bytes into byte-token ids
        self._merges = dict(merges)
        self._special = dict(sorted(special_tokens.items(), key=lambda item: item[1]))
        self._vocab = vocab
        self._cache: dict[str, list[int]] = {}

    # -- the vocabulary ------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    @property
    def merges(self) -> dict[tuple[int, int], int]:
        """`{(a, b): new_id}` in rank order (a copy)."""
        return dict(self._merges)

    @property
    def vocab(self) -> dict[int, bytes]:
        """`{id: token bytes}` for every id, special tokens included (a copy)."""
        return dict(enumerate(self._vocab))

    @property
    def special_tokens(self) -> dict[str, int]:
        """`{special token: id}` (a copy)."""
        return dict(self._special)

    @property
    def byte_ids(self) -> list[int]:
        """The token id of each byte value 0..255 (`list(range(256))` unless from GPT-2)."""
        return list(self._byte_ids)

    # -- training ------------------------------------------------------------------------
    def train(self, text: str | Iterable[str], vocab_size: int, verbose: bool = False,
              progress: bool = True) -> BPETokenizer:
        """Learn merges from `text` (a str or several) until there are `vocab_size` tokens.

        `vocab_size` counts the 256 byte tokens, the merges and the special tokens. Ties
        between equally frequent pairs go to the smallest `(a, b)` of token ids. If the text
        runs out of pairs first, training stops early with a warning and `vocab_size` is
        smaller than asked. Returns self, so `tok = BPETokenizer().train(text, 512)` works.
        """
        specials = list(self._special)
        smallest = 256 + len(specials)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) \
                or vocab_size < smallest:
            raise ValueError(f"vocab_size={vocab_size!r} is too small: it must be at least 256 "
                             f"(one token per byte) + {len(specials)} special tokens = "
                             f"{smallest}")
        counts: Counter[str] = Counter()
        for t in [text] if isinstance(text, str) else text:
            for part, is_special in _split_specials(clean_surrogates(t), set(specials)):
                if not is_special:
                    counts.update(self._chunks(part))
        if not counts:
            raise ValueError("the training text is empty (or only special tokens): pass the "
                             "text to learn merges from")
        words = {chunk.encode("utf-8"): n for chunk, n in counts.items()}
        merges = train_bpe(words, vocab_size - len(specials), verbose=verbose,
                           progress=progress)
        n = 256 + len(merges)
        if n + len(specials) < vocab_size:
            warnings.warn(f"training stopped at vocab_size {n + len(specials)} instead of "
                          f"{vocab_size}: the text has no pairs left to merge; use more text "
                          "for a larger vocabulary", stacklevel=2)
        self._set_state(list(range(256)), merges, {s: n + i for i, s in enumerate(specials)})
        return self

    # -- encoding ------------------------------------------------------------------------
    def encode(self, text: str, allowed_special: AllowedSpecial = "none_raise") -> list[int]:
        """Text -> token ids.

        allowed_special says what to do with special-token strings found in `text`
        (tiktoken's semantics):
            "none_raise" (default): raise ValueError if any appears;
            "all": encode each as its special id;
            "none": encode them as ordinary text;
            a set of special tokens: encode those as special ids, raise for the others.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        text = clean_surrogates(text)
        allowed = self._allowed_specials(allowed_special)
        if allowed_special != "none":
            self._raise_if_special(text, self._special.keys() - allowed)
        if not allowed:
            return self._encode_ordinary(text)
        ids: list[int] = []
        for part, is_special in _split_specials(text, allowed):
            if is_special:
                ids.append(self._special[part])
            else:
                ids.extend(self._encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, treating special-token strings as ordinary text."""
        return self.encode(text, allowed_special="none")

    def _allowed_specials(self, allowed_special: AllowedSpecial) -> set[str]:
        if allowed_special == "all":
            return set(self._special)
        if allowed_special in ("none", "none_raise"):
            return set()
        if isinstance(allowed_special, (set, frozenset, list, tuple)):
            unknown = set(allowed_special) - self._special.keys()
            if unknown:
                raise ValueError(f"allowed_special names {sorted(unknown)}, which are not "
                                 f"special tokens of this tokenizer ({list(self._special)})")
            return set(allowed_special)
        raise ValueError(f"allowed_special={allowed_special!r}: use 'none_raise', 'all', "
                         "'none', or a set of special tokens")

    def _raise_if_special(self, text: str, disallowed: Iterable[str]) -> None:
        found = [(pos, s) for s in disallowed if (pos := text.find(s)) >= 0]
        if found:
            pos, s = min(found)
            raise ValueError(
                f"the text contains the special token {s!r} (at position {pos}). Pass "
                f"allowed_special='all' (or a set containing it) to encode it as its id "
                f"{self._special[s]}, or allowed_special='none' to encode it as ordinary text")

    def _chunks(self, text: str) -> list[str]:
        if self._regex is None:
            return [text] if text else []
        return self._regex.findall(text)

    def _encode_ordinary(self, text: str) -> list[int]:
        """Encode text that holds no special tokens and no surrogates, chunk by chunk.

        Natural text repeats its words, so each distinct chunk is encoded once and cached.
        """
        cache = self._cache
        ids: list[int] = []
        for chunk in self._chunks(text):
            chunk_ids = cache.get(chunk)
            if chunk_ids is None:
                chunk_ids = bpe_merge(list(chunk.encode("utf-8").translate(self._byte_table)),
                                      self._merges)
                if len(chunk) <= _CACHE_MAX_CHUNK:
                    if len(cache) >= _CACHE_MAX_ENTRIES:
                        cache.clear()
                    cache[chunk] = chunk_ids
            ids.extend(chunk_ids)
        return ids

    # -- decoding ------------------------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Token ids -> the bytes they stand for, joined."""
        ids = as_id_list(ids)
        check_ids(ids, self.vocab_size)
        vocab = self._vocab
        return b"".join([vocab[i] for i in ids])

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text. Bytes that are not valid UTF-8 (a character cut between two
        tokens) become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "pattern_name": self.pattern_name,
            "pattern": self.pattern,
            "vocab_size": self.vocab_size,
            "special_tokens": self._special,
            "byte_ids": self._byte_ids,
            "merges": [list(pair) for pair in self._merges],  # rank order: id 256 + rank
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BPETokenizer:
        tok = cls(pattern=data["pattern"])
        merges = {(a, b): 256 + rank for rank, (a, b) in enumerate(data["merges"])}
        if len(merges) != len(data["merges"]):
            raise ValueError("'merges' lists the same pair twice")
        tok._set_state(data["byte_ids"], merges, data["special_tokens"])
        if tok.vocab_size != data["vocab_size"]:
            raise ValueError(f"'vocab_size' is {data['vocab_size']} but the merges and special "
                             f"tokens make {tok.vocab_size}; the file was edited or damaged")
        return tok

    def save(self, path: str | os.PathLike, vocab_view: bool = False) -> None:
        """Write the tokenizer as JSON (atomically); with `vocab_view`, also write a readable
        `.vocab` text file next to it (see `vocab_table`)."""
        super().save(path)
        if vocab_view:
            atomic_write_text(Path(path).with_suffix(".vocab"), self.vocab_table())

    def vocab_table(self) -> str:
        """Every token as text between brackets, with its id and, if merged, its two parents."""
        parents = {new: pair for pair, new in self._merges.items()}
        specials = set(self._special.values())
        vocab = self._vocab
        lines = [f"# {self!r}",
                 ("# id  [token]  <-  id [parent] + id [parent]  (\\xNN: a byte that is not "
                  "text on its own)")]
        for i, token in enumerate(vocab):
            line = f"{i:>6}  [{render_token(token)}]"
            if i in parents:
                a, b = parents[i]
                line += (f"  <-  {a} [{render_token(vocab[a])}] + "
                         f"{b} [{render_token(vocab[b])}]")
            elif i in specials:
                line += "  special token"
            lines.append(line)
        return "\n".join(lines) + "\n"

    # -- GPT-2 ---------------------------------------------------------------------------
    @classmethod
    def from_gpt2_files(cls, encoder_json_path: str | os.PathLike,
                        vocab_bpe_path: str | os.PathLike) -> BPETokenizer:
        """GPT-2's own tokenizer from OpenAI's `encoder.json` and `vocab.bpe`: the same ids
        as GPT-2 (50,257 tokens, `<|endoftext|>` = 50256)."""
        from gptlab.tokenizers.gpt2 import read_gpt2_files

        byte_ids, merges, special_tokens = read_gpt2_files(encoder_json_path, vocab_bpe_path)
        tok = cls(pattern="gpt2")
        tok._set_state(byte_ids, merges, special_tokens)
        return tok

    @classmethod
    def gpt2(cls) -> BPETokenizer:
        """GPT-2's tokenizer, with its files found (or downloaded) by `gptlab.data`."""
        from gptlab.data import gpt2_tokenizer_files  # lazy: gptlab.data is heavier

        return cls.from_gpt2_files(*gpt2_tokenizer_files())

    def __repr__(self) -> str:
        return (f"BPETokenizer(pattern={self.pattern_name!r}, vocab_size={self.vocab_size}, "
                f"special_tokens={list(self._special)})")


def _resolve_pattern(pattern: str | None) -> tuple[str | None, str | None]:
    """`pattern` argument -> (name, regex): ("gpt2", GPT2_SPLIT_PATTERN), (None, None), ..."""
    if pattern is None:
        return None, None
    if pattern in PATTERNS:
        return pattern, PATTERNS[pattern]
    for name, known in PATTERNS.items():
        if pattern == known:
            return name, known
    try:
        regex.compile(pattern)
    except (regex.error, TypeError) as e:
        raise ValueError(f"pattern={pattern!r} is neither 'gpt2', 'gpt4', None nor a valid "
                         f"regex: {e}") from e
    return "custom", pattern


def _split_specials(text: str, specials: set[str]) -> Iterator[tuple[str, bool]]:
    """Yield `(piece, is_special)`: the text between special tokens, and the tokens."""
    if not specials:
        yield text, False
        return
    # Longest first, so that a special token containing another one wins.
    alternatives = "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True))
    start = 0
    for match in re.finditer(alternatives, text):
        yield text[start:match.start()], False
        yield match.group(), True
        start = match.end()
    yield text[start:], False
