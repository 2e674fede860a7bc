"""A chat box in the notebook: type a message, watch the model's reply arrive, keep chatting.

A thin ipywidgets front end over the tested pure functions in :mod:`gptlab.chat`
(``chat_prompt``, ``reply_stream``)::

    from gptlab.widgets.chat import chat_widget
    chat_widget(model, tok)          # display it as a cell's last value

Type a message and press Enter (or Send): it joins the transcript as the user's speech
(ROMEO by default) and the model's reply (JULIET) streams in, piece by piece. The sliders set
temperature, top-k (0 = off) and the longest reply in tokens; the two name boxes change who
speaks (the whole transcript follows). "Show prompt" shows what the model was given for the
last reply: the transcript cropped to its context window. Clear starts a new chat.
"""

from __future__ import annotations

import html
import time
from typing import Any

import ipywidgets as widgets
from torch import nn

from gptlab.chat import BOT, USER, TextTokenizer, Turn, chat_prompt, clean_text, reply_stream

__all__ = ["ChatWidget", "chat_widget"]


class ChatWidget(widgets.VBox):
    """Transcript, message box, Send and Clear buttons, sampling settings, speaker names.

    Attributes for use from code (and tests): the controls ``message``, ``send_button``,
    ``clear_button``, ``temperature``, ``top_k`` (0 = off), ``max_tokens``, ``user``, ``bot``
    (speaker names), ``show_prompt``; ``transcript`` (an HTML widget), ``status`` (a line
    about the last reply: its length and speed, or an error); ``history`` (the (role, text)
    turns so far), ``last_prompt`` (what the model saw for the last reply) and ``note`` (the
    last error message, or "").
    """

    def __init__(self, model: nn.Module, tokenizer: TextTokenizer, user: str = USER,
                 bot: str = BOT, max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int = 0, seed: int | None = None) -> None:
        self.model, self.tokenizer, self.seed = model, tokenizer, seed
        self.history: list[Turn] = []
        self.last_prompt, self.note = "", ""
        vocab = getattr(getattr(model, "config", None), "vocab_size", None) or getattr(
            tokenizer, "vocab_size", 100)
        wide = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="330px")}
        self.transcript = widgets.HTML(layout=widgets.Layout(
            width="95%", max_height="360px", overflow="auto", border="1px solid #ddd",
            padding="4px 8px"))
        self.message = widgets.Text(placeholder="Say something, then press Enter",
                                    continuous_update=False,
                                    layout=widgets.Layout(width="60%"))
        self.send_button = widgets.Button(description="Send", button_style="primary")
        self.clear_button = widgets.Button(description="Clear")
        self.status = widgets.HTML()
        self.temperature = widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                               description="temperature", **wide)
        self.top_k = widgets.IntSlider(value=top_k, min=0, max=min(int(vocab), 200),
                                       description="top-k (0 = off)", **wide)
        self.max_tokens = widgets.IntSlider(value=max_new_tokens, min=1,
                                            max=max(500, max_new_tokens),
                                            description="max tokens", **wide)
        names = {"style": {"description_width": "40px"}, "layout": widgets.Layout(width="200px")}
        self.user = widgets.Text(value=user, description="you", **names)
        self.bot = widgets.Text(value=bot, description="bot", **names)
        self.show_prompt = widgets.Checkbox(value=False, description="show prompt", indent=False)
        settings = widgets.HBox([
            widgets.VBox([self.temperature, self.top_k, self.max_tokens]),
            widgets.VBox([self.user, self.bot, self.show_prompt])])
        super().__init__([self.transcript,
                          widgets.HBox([self.message, self.send_button, self.clear_button]),
                          self.status, settings])
        self.message.observe(self._on_enter, names="value")  # Enter (or leaving the box)
        self.send_button.on_click(lambda _: self.send())
        self.clear_button.on_click(lambda _: self.clear())
        for control in (self.user, self.bot, self.show_prompt):
            control.observe(lambda _: self._render(), names="value")
        self._busy = False
        self._render()

    def settings(self) -> dict[str, Any]:
        """The controls' values as arguments of :func:`gptlab.chat.reply_stream`."""
        return {"user": self.user.value.strip(), "bot": self.bot.value.strip(),
                "max_new_tokens": self.max_tokens.value,
                "temperature": self.temperature.value, "top_k": self.top_k.value or None}

    def send(self, text: str | None = None) -> str:
        """Add ``text`` (default: the message box) as the user's turn and stream the reply
        into the transcript; returns the reply ("" when there was nothing to send or it
        failed: then ``note`` says why and the message stays in the box)."""
        text = clean_text(self.message.value if text is None else text)
        if not text or self._busy:
            return ""
        self._busy, self.note = True, ""
        try:
            self.history.append(("user", text))
            self.message.value = ""
            settings = self.settings()
            seed = None if self.seed is None else self.seed + len(self.history)
            block = getattr(getattr(self.model, "config", None), "block_size", None)
            reply, start, first = "", time.perf_counter(), None
            try:
                self.last_prompt = chat_prompt(
                    self.history, settings["user"], settings["bot"], max_tokens=block,
                    count_tokens=lambda s: len(self.tokenizer.encode(s)))
                for piece in reply_stream(self.model, self.tokenizer, self.history, seed=seed,
                                          **settings):
                    first = time.perf_counter() - start if first is None else first
                    reply += piece
                    self._render(pending=reply)
            except ValueError as exc:  # a character the tokenizer lacks, a bad name, ...
                self.history.pop()
                self.message.value, self.note = text, f"Cannot reply: {exc}"
                self.status.value = f"<span style='color:#b00'>{html.escape(self.note)}</span>"
                self._render()
                return ""
            elapsed = time.perf_counter() - start
            self.history.append(("bot", reply))
            self._render()
            self.status.value = (
                f"<span style='color:#666'>reply: {len(reply)} characters in {elapsed:.2f} s"
                f" (first piece after {1000 * (first or elapsed):.0f} ms)</span>")
            return reply
        finally:
            self._busy = False

    def clear(self) -> None:
        """Forget the chat: an empty transcript."""
        self.history, self.last_prompt, self.note = [], "", ""
        self.status.value = ""
        self._render()

    def _on_enter(self, change: dict[str, Any]) -> None:
        if change["new"] and not self._busy:
            self.send()

    def _render(self, pending: str | None = None) -> None:
        """The transcript as HTML (the reply being written in ``pending``)."""
        user, bot = self.user.value.strip() or "?", self.bot.value.strip() or "?"
        turns = [(user if role == "user" else bot, role, text) for role, text in self.history]
        if pending is not None:
            turns.append((bot, "bot", pending + "▌"))
        rows = [f"<div style='margin:4px 0;color:{'#1f5fa8' if role == 'user' else '#222'}'>"
                f"<b>{html.escape(name)}:</b><br>"
                f"<span style='white-space:pre-wrap'>{html.escape(text)}</span></div>"
                for name, role, text in turns]
        if not rows:
            rows = ["<i style='color:#888'>(no messages yet)</i>"]
        if self.show_prompt.value and self.last_prompt:
            rows.append("<div style='color:#888;margin-top:8px'>what the model saw for the last "
                        "reply (its context window):<pre style='white-space:pre-wrap'>"
                        f"{html.escape(self.last_prompt)}</pre></div>")
        self.transcript.value = "".join(rows)


def chat_widget(model: nn.Module, tokenizer: TextTokenizer, user: str = USER, bot: str = BOT,
                max_new_tokens: int = 200, temperature: float = 0.8, top_k: int = 0,
                seed: int | None = None) -> ChatWidget:
    """A chat with ``model`` and its ``tokenizer`` (anything with ``encode`` and ``decode``);
    display it as a cell's last value. ``seed``: the same chat gives the same replies."""
    return ChatWidget(model, tokenizer, user=user, bot=bot, max_new_tokens=max_new_tokens,
                      temperature=temperature, top_k=top_k, seed=seed)
