"""Chatting with a model that only knows plays: the transcript format, cropping, streaming.

Lesson 12 builds this file. Our model never saw a chat; it saw a play, where every speech is
a speaker's name in capitals, a colon, the lines, and a blank line::

    ROMEO:
    Good morrow, fair lady.

    JULIET:
    Good morrow, sir.

So a chat *is* a play: the user's messages are one character's speeches (``USER``, "ROMEO"),
the model's replies another's (``BOT``, "JULIET"). To get a reply, write the transcript in
that format, end it with the bot's name as a cue (``"JULIET:\\n"``), and let the model
continue until it writes a blank line (``STOP``), the end of a speech. The web page of
``gptlab serve`` builds the same prompts, in JavaScript.

    history = [("user", "Good morrow, fair lady.")]       # (role, text), oldest first
    chat_prompt(history)        # 'ROMEO:\\nGood morrow, fair lady.\\n\\nJULIET:\\n'
    for piece in reply_stream(model, tok, history):     # text pieces, as they are made
        print(piece, end="")

The context window. The model sees at most ``block_size`` tokens (64 characters for the
course's model). A long chat is cropped by dropping the *oldest whole turns* until the prompt
fits, so the model always sees a clean transcript that starts at a speaker's name; the newest
turn is always kept (if it alone is too long, generation sees only its end: the crop rule of
``gptlab.generate``).

The same chat over HTTP. ``gptlab serve`` streams a reply as Server-Sent Events: lines
``data: {"token": "..."}``, one per generated token, each followed by a blank line, and a
last ``data: {"done": true, ...}`` with the counts and timings. ``sse_events(lines)`` turns
such lines into dicts as they arrive; ``parse_sse(lines)`` reads a whole stream into
(tokens, summary).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Protocol

from torch import nn

from gptlab.generate import stream

__all__ = [
    "BOT",
    "STOP",
    "USER",
    "Turn",
    "chat_prompt",
    "clean_text",
    "format_turn",
    "parse_sse",
    "reply",
    "reply_stream",
    "sse_events",
]

USER = "ROMEO"  # the speaker of the user's messages
BOT = "JULIET"  # the speaker of the model's replies
STOP = "\n\n"  # a blank line ends a speech

Turn = tuple[str, str]  # (role, text), role "user" or "bot"


class TextTokenizer(Protocol):
    """Anything with ``encode`` and ``decode``, such as the course's tokenizers."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...


def clean_text(text: str) -> str:
    """A message as one speech: no blank lines inside (they would end the speech early), no
    blank lines or spaces around it. ``"  Hi!\\n\\n\\nHow are you? "`` -> ``"Hi!\\nHow are you?"``."""
    if not isinstance(text, str):
        raise TypeError(f"a message must be a str, got {type(text).__name__}.")
    return re.sub(r"\n\s*\n", "\n", text.replace("\r\n", "\n").strip())


def format_turn(speaker: str, text: str) -> str:
    """One speech in the play format: ``f"{speaker}:\\n{text}\\n\\n"``."""
    return f"{speaker}:\n{text}\n\n"


def _speaker(role: str, user: str, bot: str) -> str:
    if role == "user":
        return user
    if role == "bot":
        return bot
    raise ValueError(f"a turn's role must be 'user' or 'bot', got {role!r}.")


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name.strip() or "\n" in name or ":" in name:
        raise ValueError(f"the {what} speaker's name must be a non-empty single line without "
                         f"':' (like 'ROMEO'), got {name!r}.")


def chat_prompt(history: Sequence[Turn], user: str = USER, bot: str = BOT,
                max_tokens: int | None = None,
                count_tokens: Callable[[str], int] = len) -> str:
    """The transcript of ``history`` in the play format, ending with the cue ``f"{bot}:\\n"``.

    history: (role, text) turns, oldest first, role "user" (spoken by ``user``) or "bot"
    (spoken by ``bot``). With ``max_tokens``, the oldest whole turns are dropped until
    ``count_tokens(prompt) <= max_tokens`` (``count_tokens`` counts a text's tokens: ``len``
    for characters, or ``lambda s: len(tok.encode(s))``); the newest turn and the cue are
    always kept, even when they alone are too long.

    >>> chat_prompt([("user", "Hi"), ("bot", "Hello"), ("user", "Bye")], max_tokens=40)
    'JULIET:\\nHello\\n\\nROMEO:\\nBye\\n\\nJULIET:\\n'
    """
    _check_name(user, "user")
    _check_name(bot, "bot")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)
                                   or max_tokens < 1):
        raise ValueError(f"max_tokens must be an integer >= 1 or None, got {max_tokens!r}.")
    turns = [format_turn(_speaker(role, user, bot), text) for role, text in history]
    cue = f"{bot}:\n"
    start = 0
    if max_tokens is not None:
        while start < len(turns) - 1 and count_tokens("".join(turns[start:]) + cue) > max_tokens:
            start += 1
    return "".join(turns[start:]) + cue


def _held_back(text: str, stop: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``stop`` (so they
    must wait for the next token before being shown)."""
    for n in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0


def reply_stream(model: nn.Module, tok: TextTokenizer, history: Sequence[Turn],
                 user: str = USER, bot: str = BOT, max_new_tokens: int = 200,
                 temperature: float = 0.8, top_k: int | None = None,
                 top_p: float | None = None, seed: int | None = None,
                 stop: str = STOP) -> Iterator[str]:
    """The bot's reply to ``history``, as text pieces yielded while the model makes them.

    The prompt is ``chat_prompt(history, user, bot)`` cropped to the model's context
    (``model.config.block_size`` tokens). Generation (``gptlab.generate.stream``) ends at
    ``stop`` (a blank line: the end of the speech) or after ``max_new_tokens`` tokens. The
    pieces join to the reply without the stop and without trailing whitespace: text that
    may be the start of the stop (a single newline) is held back until the next token shows
    whether it is, and so are trailing spaces. ``top_k=0`` / ``top_p=1`` count as off. A
    ValueError says what is wrong (a character the tokenizer does not know, a bad setting).
    """
    if not isinstance(stop, str) or not stop:
        raise ValueError(f"stop must be a non-empty string, got {stop!r}.")
    block = getattr(getattr(model, "config", None), "block_size", None)
    prompt = chat_prompt(history, user, bot, max_tokens=block,
                         count_tokens=lambda s: len(tok.encode(s)))
    ids = list(tok.encode(prompt))
    top_k = None if top_k in (None, 0) else top_k
    top_p = None if top_p is None or top_p >= 1.0 else top_p
    steps = stream(model, ids, max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, seed=seed, stop=stop, decode=tok.decode)
    new: list[int] = []
    shown = 0  # characters of the reply already yielded
    text = ""
    for t in steps:
        new.append(int(t))
        text = tok.decode(new)
        end = text.find(stop)
        if end >= 0:  # the speech is over: show the rest before the stop, and nothing after
            text = text[:end]
            break
        # Hold back a possible start of the stop, trailing whitespace (the reply is
        # stripped at the end) and half a multi-byte character (byte-level BPE).
        ready = len(text[:len(text) - _held_back(text, stop)].rstrip("\ufffd").rstrip())
        if ready > shown:
            yield text[shown:ready]
            shown = ready
    final = text.rstrip()
    if len(final) > shown:
        yield final[shown:]


def reply(model: nn.Module, tok: TextTokenizer, history: Sequence[Turn], **settings) -> str:
    """The whole reply of :func:`reply_stream` as one string (same arguments)."""
    return "".join(reply_stream(model, tok, history, **settings))


# ---------------------------------------------------------------------------- the server's stream


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON events of a Server-Sent Events stream, as they arrive.

    ``lines`` are the response's lines without their line ends (httpx:
    ``response.iter_lines()``). Each ``data:`` line (one optional space after the colon)
    holds one JSON object; blank lines (event separators), comments (``: ...``) and other
    fields (``event:``, ``id:``, ``retry:``) are skipped.
    """
    for line in lines:
        if line.startswith("data:"):
            yield json.loads(line[5:].removeprefix(" "))


def parse_sse(lines: Iterable[str]) -> tuple[list[str], dict[str, Any] | None]:
    """Read a whole ``/v1/generate`` stream: (tokens, summary).

    tokens: the ``"token"`` pieces in order, one per generated token (a piece may be "");
    summary: the final ``{"done": true, ...}`` event, or None when the stream ended without
    one. An ``{"error": message}`` event raises RuntimeError(message).

    >>> parse_sse(['data: {"token": "Go"}', '', 'data: {"token": "od"}', '',
    ...            'data: {"done": true, "completion_tokens": 2}', ''])
    (['Go', 'od'], {'done': True, 'completion_tokens': 2})
    """
    tokens: list[str] = []
    for event in sse_events(lines):
        if "error" in event:
            raise RuntimeError(f"the server reported an error: {event['error']}")
        if event.get("done"):
            return tokens, event
        if "token" in event:
            tokens.append(event["token"])
    return tokens, None
