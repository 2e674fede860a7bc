"""Character-level tokenizer: one id per distinct character of the training text (nanoGPT's
`stoi` / `itos`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gptlab.tokenizers.base import Tokenizer, as_id_list, check_ids, register


@register
class CharTokenizer(Tokenizer):
    """Maps each character seen in the training text to an id, in sorted order.

    >>> tok = CharTokenizer("hello")          # same as CharTokenizer.fit("hello")
    >>> tok.chars, tok.encode("hell"), tok.decode([0, 1])
    (['e', 'h', 'l', 'o'], [1, 0, 2, 2], 'eh')

    Characters are Python code points, so any string works, lone surrogates included
    (they are saved with JSON escapes).
    """

    format_name = "gptlab-char-tokenizer"

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"CharTokenizer is fitted on a str, got {type(text).__name__}")
        if not text:
            raise ValueError("cannot fit a CharTokenizer on empty text: pass the training text")
        self.chars: list[str] = sorted(set(text))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        self.itos: dict[int, str] = dict(enumerate(self.chars))

    @classmethod
    def fit(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is the set of characters of `text`."""
        return cls(text)

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        """One id per character; ValueError for a character the tokenizer was not fitted on."""
        stoi = self.stoi
        try:
            return [stoi[c] for c in text]
        except KeyError as e:
            char = e.args[0]
            raise ValueError(
                f"character {char!r} at position {text.index(char)} is not in the vocabulary "
                f"({self.vocab_size} characters); fit the tokenizer on text that includes it"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """The characters of `ids`, joined; ValueError for an id outside the vocabulary."""
        ids = as_id_list(ids)
        check_ids(ids, self.vocab_size)
        chars = self.chars
        return "".join([chars[i] for i in ids])

    def to_dict(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "chars": self.chars}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CharTokenizer:
        chars = data["chars"]
        if (not isinstance(chars, list) or not chars
                or not all(isinstance(c, str) and len(c) == 1 for c in chars)
                or chars != sorted(set(chars)) or data["vocab_size"] != len(chars)):
            raise ValueError("'chars' must be the sorted, distinct characters of the vocabulary "
                             "and 'vocab_size' their number; save the tokenizer again")
        return cls("".join(chars))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"
