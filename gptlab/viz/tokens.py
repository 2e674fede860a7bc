"""Token boundaries: which piece of a text each token id stands for, drawn in colour.

``token_spans(tokenizer, text)`` encodes ``text`` and returns one ``(token_id, piece)`` per
token. ``tokens_html(tokenizer, text)`` draws the same pieces as coloured boxes (each box one
token, its id underneath), and ``show_tokens`` wraps that HTML in an object that a notebook
displays (and that prints as ``[Hello][ world]`` elsewhere).

A piece is the token's text. A byte-level token can hold part of a character only (an emoji
is 4 UTF-8 bytes, and GPT-2 may cut it into 2 or 3 tokens); such a piece is shown as its
bytes, ``\\xf0\\x9f``, and gets a dashed border in the HTML. When every token holds whole
characters, the pieces joined give the text back.

Works with any gptlab tokenizer (``CharTokenizer``, ``BPETokenizer``, GPT-2's), and with
anything that has ``encode(text)`` and ``decode(ids)`` (plus ``decode_bytes(ids)`` for
byte-level pieces). The widget ``gptlab.widgets.tokenizer_explorer`` is a thin front end.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from gptlab.tokenizers.bpe import render_token

__all__ = ["TokenView", "show_tokens", "token_pieces", "token_spans", "tokens_html"]

# Pastel backgrounds, one per token in turn, so neighbouring tokens always differ.
PALETTE = ("#ffd6a5", "#caffbf", "#9bf6ff", "#bdb2ff", "#ffc6ff", "#fdffb6")
# Whitespace drawn visibly inside the boxes (a space stays a space, boxes show its width).
_VISIBLE = {"\n": "⏎", "\t": "⇥", "\r": "␍"}


def _encode(tokenizer: Any, text: str, allowed_special: Any = None) -> list[int]:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if allowed_special is None:
        ids = tokenizer.encode(text)
    else:
        ids = tokenizer.encode(text, allowed_special=allowed_special)
    return [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]


def token_pieces(tokenizer: Any, ids: list[int]) -> list[tuple[int, str, bool]]:
    """``(id, piece, whole)`` for each id: ``whole`` is False when the token's bytes are not
    valid UTF-8 on their own (part of a character); its piece is then the bytes as ``\\xNN``."""
    out = []
    decode_bytes = getattr(tokenizer, "decode_bytes", None)
    for i in ids:
        if decode_bytes is None:
            out.append((i, tokenizer.decode([i]), True))
            continue
        raw = decode_bytes([i])
        try:
            out.append((i, raw.decode("utf-8"), True))
        except UnicodeDecodeError:
            out.append((i, render_token(raw), False))
    return out


def token_spans(tokenizer: Any, text: str, allowed_special: Any = None) -> list[tuple[int, str]]:
    """Encode ``text`` and return ``[(token_id, piece), ...]``, one pair per token.

    >>> from gptlab.tokenizers import CharTokenizer
    >>> token_spans(CharTokenizer("abc"), "cab")
    [(2, 'c'), (0, 'a'), (1, 'b')]

    ``allowed_special`` is passed to ``tokenizer.encode`` when given (``"all"`` encodes
    ``<|endoftext|>`` as its special id). Errors of ``encode`` (a character a
    CharTokenizer does not know, a special token not allowed) propagate as ValueError.
    """
    ids = _encode(tokenizer, text, allowed_special)
    return [(i, piece) for i, piece, _ in token_pieces(tokenizer, ids)]


def _box(i: int, piece: str, whole: bool, k: int, show_ids: bool) -> str:
    shown = "".join(_VISIBLE.get(c, c) for c in piece)
    style = (f"background:{PALETTE[k % len(PALETTE)]};padding:1px 0;border-radius:3px;"
             "white-space:pre;font-family:monospace;line-height:1.9;")
    if not whole:
        style += "border:1px dashed #555;font-style:italic;"
    tip = f"id {i}: {piece!r}" + ("" if whole else " (part of a character)")
    body = f'<span style="{style}" title="{html.escape(tip)}">{html.escape(shown)}</span>'
    if show_ids:
        body = ('<span style="display:inline-flex;flex-direction:column;align-items:center;'
                f'margin:0 1px 4px 0;vertical-align:top">{body}'
                f'<span style="font-size:9px;color:#555;font-family:monospace">{i}</span></span>')
    if "\n" in piece:  # keep the text's line structure
        body += "<br>"
    return body


def tokens_html(tokenizer: Any, text: str, show_ids: bool = True, title: str | None = None,
                allowed_special: Any = None, max_tokens: int = 2000) -> str:
    """HTML with one coloured box per token of ``text`` (ids underneath when ``show_ids``)
    and a summary line: how many tokens for how many characters. At most ``max_tokens``
    boxes are drawn. Errors of ``encode`` propagate (ValueError)."""
    ids = _encode(tokenizer, text, allowed_special)
    return _html(token_pieces(tokenizer, ids[:max_tokens]), len(ids), len(text), show_ids,
                 title)


def _html(pieces: list[tuple[int, str, bool]], n_tokens: int, n_chars: int, show_ids: bool,
          title: str | None) -> str:
    boxes = "".join(_box(i, p, w, k, show_ids) for k, (i, p, w) in enumerate(pieces))
    ratio = f", {n_tokens / n_chars:.2f} tokens per character" if n_chars else ""
    summary = f"{n_tokens} tokens for {n_chars} characters{ratio}"
    if n_tokens > len(pieces):
        summary += f" (showing the first {len(pieces)})"
    head = f"<b>{html.escape(title)}</b>: " if title else ""
    return (f'<div style="font-size:13px">'
            f'<div style="color:#333;margin-bottom:4px">{head}{summary}</div>'
            f'<div style="line-height:1.4">{boxes}</div></div>')


@dataclass
class TokenView:
    """What ``show_tokens`` returns: coloured HTML in a notebook, ``[piece][piece]`` in text."""

    spans: list[tuple[int, str]]
    html: str

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "".join(f"[{p}]" for _, p in self.spans)


def show_tokens(tokenizer: Any, text: str, show_ids: bool = True, title: str | None = None,
                allowed_special: Any = None, max_tokens: int = 2000) -> TokenView:
    """The tokens of ``text`` as coloured boxes; make it a cell's last value to see it.
    ``spans`` holds every token; the HTML draws at most ``max_tokens`` boxes."""
    ids = _encode(tokenizer, text, allowed_special)
    pieces = token_pieces(tokenizer, ids)
    return TokenView([(i, p) for i, p, _ in pieces],
                     _html(pieces[:max_tokens], len(ids), len(text), show_ids, title))
