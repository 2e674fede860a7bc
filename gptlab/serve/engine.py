"""The generation side of the server: prompt encoding, text pieces per token with stop strings,
a worker thread per request, and the gate that lets a few requests generate at a time.

Nothing here knows about HTTP; ``gptlab.serve.app`` puts it behind FastAPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from torch import nn

from gptlab.generate import stream

__all__ = ["Busy", "Cancelled", "Completion", "Gate", "Job", "TextStream", "encode_prompt"]

_HOLD_MAX = 8  # tokens held back at most while their text is an incomplete UTF-8 character


class Cancelled(Exception):
    """The client went away: stop generating."""


class Busy(Exception):
    """Every generation slot is taken and the queue is full."""


@dataclass
class Completion:
    """What one request produced (``text`` is the join of the streamed pieces)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "length", "stop" or "cancelled"
    elapsed_s: float

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def usage(self) -> dict[str, Any]:
        return {"finish_reason": self.finish_reason, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "elapsed_s": round(self.elapsed_s, 4), "tokens_per_s": round(self.tokens_per_s, 2)}


def encode_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Token ids of ``prompt``; ValueError naming every character the tokenizer cannot encode.

    An empty prompt starts from a newline (id 0 if the tokenizer has none), as
    ``gptlab sample`` does.
    """
    stoi = getattr(tokenizer, "stoi", None)  # a CharTokenizer: name all unknown characters
    if isinstance(stoi, dict):
        unknown = sorted({c for c in prompt if c not in stoi})
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10]) + (", ..." if len(unknown) > 10
                                                                else "")
            raise ValueError(
                f"the prompt holds {len(unknown)} character(s) this model's tokenizer does not "
                f"know: {shown} (first at position {min(prompt.index(c) for c in unknown)}). "
                f"It knows only the {len(stoi)} characters of its training text.")
    if not prompt:
        try:
            return tokenizer.encode("\n") or [0]
        except ValueError:
            return [0]
    try:
        return tokenizer.encode(prompt)
    except ValueError as e:
        raise ValueError(f"the prompt cannot be encoded: {e}") from None


class TextStream:
    """Turns generated token ids into text pieces, one piece per token, so that the pieces
    join to the completion. A piece may be empty: text is held back while it may still
    change, that is while it ends in an incomplete UTF-8 character (byte-level BPE), or in
    the beginning of a stop string. The text never includes a stop string: at the token that
    completes one, the text before it is released and generation ends.
    """

    def __init__(self, decode: Callable[[list[int]], str], stop: Sequence[str] = ()) -> None:
        self.decode = decode
        self.stop = [s for s in stop if s]
        self.text = ""  # decoded so far: the pieces given out, then the held-back text
        self.sent = 0  # characters of self.text given out
        self._pending: list[int] = []  # ids whose text is not decoded yet

    def push(self, token_id: int, last: bool = False) -> tuple[str, bool]:
        """The piece for one more token, and whether a stop string has been completed."""
        self._pending.append(token_id)
        new = self.decode(self._pending)
        if not (new.endswith("\ufffd") and len(self._pending) < _HOLD_MAX and not last):
            self._pending = []
            old = len(self.text)
            self.text += new
            found = [i for s in self.stop
                     if (i := self.text.find(s, max(0, old - len(s) + 1))) >= 0]
            if found:
                return self._release(min(found)), True
        if last:
            if self._pending:  # hold no more
                self.text += self.decode(self._pending)
                self._pending = []
            return self._release(len(self.text)), False
        return self._release(len(self.text) - self._stop_prefix()), False

    def _stop_prefix(self) -> int:
        """Length of the longest end of the text that begins a stop string."""
        longest = 0
        for s in self.stop:
            for k in range(min(len(s) - 1, len(self.text) - self.sent), longest, -1):
                if self.text.endswith(s[:k]):
                    longest = k
                    break
        return longest

    def _release(self, end: int) -> str:
        piece = self.text[self.sent:end] if end > self.sent else ""
        self.sent = max(self.sent, end)
        return piece


@dataclass
class Job:
    """One generation request, checked and encoded, ready to run in a worker thread."""

    model: nn.Module
    decode: Callable[[list[int]], str]
    prompt_ids: list[int]
    max_new_tokens: int
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def run(self, emit: Callable[[str], None], cancel: threading.Event) -> Completion:
        """Generate, calling ``emit(piece)`` once per token. Stops early when a stop string
        appears, or when ``cancel`` is set (or ``emit`` raises Cancelled)."""
        start = time.perf_counter()
        text = TextStream(self.decode, self.stop)
        steps = stream(self.model, self.prompt_ids, self.max_new_tokens,
                       temperature=self.temperature, top_k=self.top_k, top_p=self.top_p,
                       repetition_penalty=self.repetition_penalty, seed=self.seed)
        n, finish = 0, "length"
        try:
            for token in steps:
                n += 1
                piece, stopped = text.push(int(token), last=n == self.max_new_tokens)
                if cancel.is_set():
                    raise Cancelled
                emit(piece)
                if stopped:
                    finish = "stop"
                    break
        except Cancelled:
            finish = "cancelled"
        finally:
            steps.close()  # type: ignore[attr-defined]
        return Completion(text.text[:text.sent], len(self.prompt_ids), n, finish,
                          time.perf_counter() - start)


class Gate:
    """At most ``max_concurrent`` holders at a time; up to ``max_queue`` more wait in line
    (first come, first served); beyond that ``acquire`` raises Busy at once.

    ``acquire`` and ``release`` must run on the event loop (``release_threadsafe`` from any
    thread). The server releases when a generation thread ends, not when its client goes.
    """

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        self.max_concurrent, self.max_queue = max_concurrent, max_queue
        self.active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._seconds = 1.0  # a running average of how long one holder holds

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self.active < self.max_concurrent and not self._waiters:
            self.active += 1
            return
        if len(self._waiters) >= self.max_queue:
            raise Busy
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut  # release() handed its slot over: self.active already counts us
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # a slot came just as we were cancelled: pass it on
            else:
                self._waiters.remove(fut)
            raise

    def release(self, held_s: float | None = None) -> None:
        if held_s is not None:
            self._seconds = 0.8 * self._seconds + 0.2 * held_s
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        self.active -= 1

    def release_threadsafe(self, loop: asyncio.AbstractEventLoop, held_s: float) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            loop.call_soon_threadsafe(self.release, held_s)

    def retry_after(self) -> int:
        """Seconds a refused client should wait: about when a place in line frees up."""
        turns = (self.waiting + self.active) / self.max_concurrent
        return max(1, min(60, round(turns * self._seconds)))
