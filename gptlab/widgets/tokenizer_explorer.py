"""The tokenizer explorer: type a text, see its tokens in colour with their ids, switch tokenizers.

A thin ipywidgets front end over :func:`gptlab.viz.tokens.tokens_html`::

    from gptlab.widgets.tokenizer_explorer import tokenizer_explorer
    tokenizer_explorer({"characters": char_tok, "BPE 1024": bpe, "GPT-2": gpt2})

Pick one tokenizer from the menu, or "all" to see every tokenizer's tokens for the same text
one under another. A tokenizer given as None (GPT-2 when its files are missing) is left out.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from gptlab.viz.tokens import tokens_html

__all__ = ["ALL", "TokenizerExplorer", "explorer_html", "tokenizer_explorer"]

ALL = "all"  # the menu value that shows every tokenizer
DEFAULT_TEXT = "Hello world! The king's 12345 horses said: naïve café 😀"


def _special_mode(tokenizer: Any) -> str | None:
    """'all' for tokenizers with special tokens, so '<|endoftext|>' shows as its one id."""
    return "all" if getattr(tokenizer, "special_tokens", None) else None


def explorer_html(tokenizers: Mapping[str, Any], choice: str, text: str,
                  show_ids: bool = True) -> str:
    """What the explorer shows: the tokens of ``text`` for tokenizer ``choice`` (a key of
    ``tokenizers``) or for every tokenizer (``choice == "all"``). A text a tokenizer cannot
    encode (a character a CharTokenizer never saw) gives that tokenizer's error message."""
    names = list(tokenizers) if choice == ALL else [choice]
    parts = []
    for name in names:
        if name not in tokenizers:
            raise ValueError(f"unknown tokenizer {name!r}; choose one of {list(tokenizers)} "
                             f"or {ALL!r}")
        tok = tokenizers[name]
        try:
            parts.append(tokens_html(tok, text, show_ids=show_ids, title=name,
                                     allowed_special=_special_mode(tok)))
        except ValueError as err:
            parts.append(f'<div style="font-size:13px;color:#b00"><b>{html.escape(name)}</b>: '
                         f"cannot encode this text: {html.escape(str(err))}</div>")
    return '<hr style="margin:6px 0">'.join(parts)


class TokenizerExplorer(widgets.VBox):
    """A text box, a tokenizer menu, an "ids" switch and the coloured tokens.

    Attributes for use from code (and tests): ``text``, ``choice``, ``show_ids`` (the
    controls) and ``view`` (an HTML widget whose ``value`` is the current drawing). The
    drawing updates as you type.
    """

    def __init__(self, tokenizers: Mapping[str, Any], text: str = DEFAULT_TEXT) -> None:
        self.tokenizers = {name: tok for name, tok in tokenizers.items() if tok is not None}
        if not self.tokenizers:
            raise ValueError("tokenizer_explorer needs at least one tokenizer, e.g. "
                             "{'characters': CharTokenizer(text)}")
        options = list(self.tokenizers) + ([ALL] if len(self.tokenizers) > 1 else [])
        self.text = widgets.Textarea(value=text, description="text", continuous_update=True,
                                     layout=widgets.Layout(width="95%", height="70px"))
        self.choice = widgets.Dropdown(options=options, value=options[0],
                                       description="tokenizer")
        self.show_ids = widgets.Checkbox(value=True, description="show ids", indent=False)
        self.view = widgets.HTML()
        super().__init__([self.text, widgets.HBox([self.choice, self.show_ids]), self.view])
        for control in (self.text, self.choice, self.show_ids):
            control.observe(self._update, names="value")
        self._update()

    def _update(self, change: object = None) -> None:
        self.view.value = explorer_html(self.tokenizers, self.choice.value, self.text.value,
                                        self.show_ids.value)


def tokenizer_explorer(tokenizers: Mapping[str, Any], text: str = DEFAULT_TEXT
                       ) -> TokenizerExplorer:
    """The tokenizer explorer for ``{name: tokenizer}`` (display it as a cell's last value).

    Any object with ``encode``/``decode`` works; None values are skipped.
    """
    return TokenizerExplorer(tokenizers, text)
