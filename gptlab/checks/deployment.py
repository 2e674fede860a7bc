"""Checkers for lesson 12 (deployment): the chat prompt with cropping, reading an SSE stream."""

from __future__ import annotations

import copy

from gptlab.chat import chat_prompt as _chat_prompt
from gptlab.chat import parse_sse as _parse_sse
from gptlab.checks.core import LearnerError, call, exercise, expect_equal, expect_type, fail

__all__ = ["check_chat_prompt", "check_parse_sse"]

_HISTORY = [("user", "Good morrow, fair lady."), ("bot", "Good morrow, sir."),
            ("user", "What news?"), ("bot", "None, my lord.\nBut stay."), ("user", "Farewell!")]


def _prompt_cases() -> list[tuple[str, list, dict]]:
    """(description, history, keyword arguments) for chat_prompt, in order of difficulty."""
    full = len(_chat_prompt(_HISTORY))
    two_chars = {"count_tokens": lambda s: (len(s) + 1) // 2}
    return [
        ("one user turn", _HISTORY[:1], {}),
        ("an empty history (the bot speaks first)", [], {}),
        ("a longer chat", _HISTORY, {}),
        ("other speaker names", _HISTORY[:3], {"user": "HAMLET", "bot": "OPHELIA"}),
        ("max_tokens that fits everything", _HISTORY, {"max_tokens": full}),
        ("max_tokens one below the full length", _HISTORY, {"max_tokens": full - 1}),
        ("max_tokens=40", _HISTORY, {"max_tokens": 40}),
        ("max_tokens=60", _HISTORY, {"max_tokens": 60}),
        ("max_tokens smaller than the newest turn", _HISTORY, {"max_tokens": 5}),
        ("a count_tokens of 2 characters per token", _HISTORY, {"max_tokens": 40, **two_chars}),
    ]


def _describe(kwargs: dict) -> str:
    shown = {k: ("<2 characters per token>" if k == "count_tokens" else v)
             for k, v in kwargs.items()}
    return ", ".join(f"{k}={v!r}" for k, v in shown.items()) or "default arguments"


@exercise("12.1", "the chat prompt, cropped to the context")
def check_chat_prompt(fn):
    """Check ``chat_prompt(history, user="ROMEO", bot="JULIET", max_tokens=None,
    count_tokens=len) -> str``.

    Each (role, text) turn becomes ``f"{speaker}:\\n{text}\\n\\n"`` (role "user" is spoken by
    ``user``, "bot" by ``bot``), the prompt ends with the cue ``f"{bot}:\\n"``, and with
    ``max_tokens`` the oldest whole turns are dropped until ``count_tokens(prompt) <=
    max_tokens``, always keeping the newest turn and the cue. Compared with
    ``gptlab.chat.chat_prompt``.
    """
    for what, history, kwargs in _prompt_cases():
        before = copy.deepcopy(history)
        got = call(fn, list(history), **kwargs)
        expected = _chat_prompt(history, **kwargs)
        example = f"{what}: history={history!r}, {_describe(kwargs)}"
        expect_type(got, str, "the prompt", example)
        if history != before:
            fail(f"chat_prompt changed the history it was given ({what}); build a new string "
                 "(or a new list) instead of editing the history.")
        if got == expected:
            continue
        bot = kwargs.get("bot", "JULIET")
        if not got.endswith(f"{bot}:\n"):
            fail(f"the prompt must end with the cue {bot + ':' + chr(10)!r} (the bot's name, "
                 f"a colon, a newline), so the model writes the bot's reply next. For "
                 f"{example}\n  expected {expected!r}\n  got      {got!r}")
        if "max_tokens" not in kwargs:
            turn = "ROMEO:\nGood morrow, fair lady.\n\n"
            hint = (f" Each turn is the speaker, ':', a newline, the text, and a blank line "
                    f"({turn!r}).") if history else ""
            fail(f"wrong prompt for {example}.{hint}\n  expected {expected!r}\n"
                 f"  got      {got!r}")
        count = kwargs.get("count_tokens", len)
        limit = kwargs["max_tokens"]
        if "count_tokens" in kwargs and got == _chat_prompt(
                history, kwargs.get("user", "ROMEO"), bot, max_tokens=limit):
            fail(f"the prompt was measured in characters, but count_tokens says how many "
                 f"tokens a text is: measure with count_tokens(prompt), not len(prompt) (a "
                 f"token can be longer than a character). For {example}\n"
                 f"  expected {expected!r}\n  got      {got!r}")
        if not got.startswith(("ROMEO:\n", "JULIET:\n")):
            fail(f"drop whole turns, never part of one: the prompt should start at a "
                 f"speaker's name, so the model sees a clean transcript. For {example}\n"
                 f"  expected {expected!r}\n  got      {got!r}")
        if count(got) > limit and len(got) > len(expected):
            fail(f"the prompt is {count(got)} tokens long, over max_tokens={limit}: drop more "
                 f"old turns (count the whole prompt, the cue included). For {example}\n"
                 f"  expected {expected!r}\n  got      {got!r}")
        if not expected.endswith(got) or "Farewell!" not in got:
            fail(f"when cropping, keep the newest turns: drop the oldest turns first, and "
                 f"always keep the newest turn and the cue, even if they alone are too long. "
                 f"For {example}\n  expected {expected!r}\n  got      {got!r}")
        fail(f"the prompt was cropped too much: keep as many of the newest turns as fit in "
             f"max_tokens={limit} ({count(expected)} tokens fit here, your prompt has "
             f"{count(got)}). Count the whole prompt, cue included. For {example}\n"
             f"  expected {expected!r}\n  got      {got!r}")
    return "the format and the cropping match gptlab.chat.chat_prompt on 10 chats"


def _sse_cases() -> list[tuple[str, list[str]]]:
    done = 'data: {"done": true, "finish_reason": "stop", "prompt_tokens": 9, ' \
           '"completion_tokens": 3, "elapsed_s": 0.05, "tokens_per_s": 60.0}'
    return [
        ("a short stream", ['data: {"token": "Go"}', "", 'data: {"token": "od"}', "",
                            'data: {"token": " day"}', "", done, ""]),
        ("newlines and escapes inside tokens", ['data: {"token": "Ay\\n"}', "",
                                                'data: {"token": "\\u00e9"}', "",
                                                'data: {"token": "\\""}', "", done, ""]),
        ("no space after 'data:'", ['data:{"token":"a"}', "", 'data:{"token":"b"}', "",
                                    done.replace("data: ", "data:"), ""]),
        ("an empty piece, comments and other fields",
         [": keep-alive", "", 'data: {"token": "x"}', "", "event: message", "id: 2",
          'data: {"token": ""}', "", "retry: 1000", 'data: {"token": "y"}', "", done, ""]),
        ("a stream that ends without its done event", ['data: {"token": "cut"}', "",
                                                       'data: {"token": " sho"}', ""]),
        ("no tokens at all", [done.replace('"completion_tokens": 3', '"completion_tokens": 0'),
                              ""]),
    ]


@exercise("12.2", "read a stream of server-sent events")
def check_parse_sse(fn):
    """Check ``parse_sse(lines) -> (tokens, summary)``.

    ``lines`` are the lines of a ``/v1/generate`` stream without line ends; the function
    returns the ``"token"`` values of the ``data:`` events in order (empty pieces included)
    and the final ``{"done": true, ...}`` event as a dict (None when there is none), skipping
    blank lines, comments and other fields, and raises RuntimeError for an ``{"error": ...}``
    event. Compared with ``gptlab.chat.parse_sse``; the lines are given as a one-pass
    iterator, like ``response.iter_lines()``.
    """
    for what, lines in _sse_cases():
        expected = _parse_sse(lines)
        got = call(fn, iter(lines))
        example = f"{what}: {lines!r}"
        if not isinstance(got, tuple) or len(got) != 2:
            fail(f"parse_sse should return a pair (tokens, summary), got {got!r} for {example}")
        tokens, summary = got
        expect_type(tokens, list, "tokens (the first item)", example)
        if tokens != expected[0]:
            raw = [t for t in tokens if isinstance(t, str) and t.lstrip().startswith("{")]
            if raw:
                fail(f"tokens should be the text pieces, not the JSON: each data line holds "
                     f"a JSON object; json.loads it and take its 'token'. For {example}\n"
                     f"  expected {expected[0]!r}\n  got      {tokens!r}")
            fail(f"wrong tokens for {example}\n  expected {expected[0]!r}\n  got      "
                 f"{tokens!r}\n  (a data line is 'data:', maybe a space, then JSON; only "
                 "objects with a 'token' are tokens; keep empty pieces: one per token.)")
        if expected[1] is None and summary is not None:
            fail(f"the stream ended without a done event, so the summary should be None, got "
                 f"{summary!r} for {example}")
        expect_equal(summary, expected[1], "the summary (the done event as a dict)", example)
    try:
        got = call(fn, iter(['data: {"token": "a"}', "", 'data: {"error": "out of memory"}', ""]))
    except LearnerError as err:
        if not isinstance(err.original, RuntimeError):
            raise
    else:
        fail(f"an error event ('data: {{\"error\": \"out of memory\"}}') should raise "
             f"RuntimeError with the server's message; got the result {got!r} instead.")
    return f"tokens and summaries match gptlab.chat.parse_sse on {len(_sse_cases())} streams, " \
           "and an error event raises"
