"""gptlab.chat: the play-format transcript, cropping to the context, streamed replies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from gptlab.chat import (
    BOT,
    STOP,
    USER,
    chat_prompt,
    clean_text,
    format_turn,
    parse_sse,
    reply,
    reply_stream,
    sse_events,
)
from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import CharTokenizer

ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ:,.!?'\n"
TOK = CharTokenizer(ALPHABET)


class Scripted(nn.Module):
    """A fake language model that writes ``script``, one character per call (greedy
    decoding follows it exactly), and records every input it is shown."""

    def __init__(self, script: str, block_size: int = 64) -> None:
        super().__init__()
        self.script, self.config = TOK.encode(script), SimpleNamespace(block_size=block_size)
        self.seen: list[str] = []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx, targets=None):
        self.seen.append(TOK.decode(idx[0].tolist()))
        step = len(self.seen) - 1
        logits = torch.zeros(idx.shape[0], idx.shape[1], TOK.vocab_size)
        logits[:, -1, self.script[min(step, len(self.script) - 1)]] = 10.0
        return logits, None


def test_format_and_prompt():
    assert format_turn("ROMEO", "Hi") == "ROMEO:\nHi\n\n"
    assert chat_prompt([]) == f"{BOT}:\n"
    history = [("user", "Good morrow."), ("bot", "And to you."), ("user", "Farewell.")]
    assert chat_prompt(history) == (f"{USER}:\nGood morrow.\n\n{BOT}:\nAnd to you.\n\n"
                                    f"{USER}:\nFarewell.\n\n{BOT}:\n")
    assert chat_prompt(history[:1], user="A", bot="B") == "A:\nGood morrow.\n\nB:\n"


def test_prompt_crops_oldest_whole_turns():
    history = [("user", "Hi"), ("bot", "Hello"), ("user", "Bye")]
    full = chat_prompt(history)
    assert chat_prompt(history, max_tokens=len(full)) == full
    assert chat_prompt(history, max_tokens=len(full) - 1) == "JULIET:\nHello\n\nROMEO:\nBye\n\nJULIET:\n"
    assert chat_prompt(history, max_tokens=20) == "ROMEO:\nBye\n\nJULIET:\n"
    assert chat_prompt(history, max_tokens=1) == "ROMEO:\nBye\n\nJULIET:\n"  # newest kept
    # a token counter other than len: two characters per token
    assert chat_prompt(history, max_tokens=len(full) // 2,
                       count_tokens=lambda s: (len(s) + 1) // 2) == full


@given(st.lists(st.tuples(st.sampled_from(["user", "bot"]),
                          st.text("ab \n", min_size=0, max_size=12)), max_size=8),
       st.integers(1, 120))
def test_cropped_prompt_is_a_suffix_of_whole_turns(history, limit):
    full = chat_prompt(history)
    cropped = chat_prompt(history, max_tokens=limit)
    assert full.endswith(cropped) and cropped.endswith(f"{BOT}:\n")
    n = len(history)
    suffixes = [chat_prompt(history[i:]) for i in range(n)] or [full]
    assert cropped in suffixes  # whole turns only
    fitting = [s for s in suffixes if len(s) <= limit]
    assert cropped == (fitting[0] if fitting else suffixes[-1])  # the longest that fits


def test_prompt_rejects_bad_input():
    with pytest.raises(ValueError, match="role"):
        chat_prompt([("narrator", "Once")])
    with pytest.raises(ValueError, match="name"):
        chat_prompt([], bot="JULIET:")
    with pytest.raises(ValueError, match="name"):
        chat_prompt([], user="")
    with pytest.raises(ValueError, match="max_tokens"):
        chat_prompt([], max_tokens=0)


def test_clean_text():
    assert clean_text("  Hi!\n\n\nHow are you? ") == "Hi!\nHow are you?"
    assert clean_text("a\n \nb") == "a\nb"
    assert clean_text("  ") == ""
    with pytest.raises(TypeError):
        clean_text(None)


def test_reply_stops_at_blank_line_and_streams_pieces():
    model = Scripted("Good day\nto you.\n\nROMEO:\nmore")
    pieces = list(reply_stream(model, TOK, [("user", "Hi")], temperature=0))
    assert "".join(pieces) == "Good day\nto you."
    assert len(pieces) > 5  # it streams (one piece per character here)
    assert all("\n\n" not in p for p in pieces)
    assert model.seen[0] == "ROMEO:\nHi\n\nJULIET:\n"  # the prompt of the first step
    assert len(model.seen) == len("Good day\nto you.\n\n")  # stopped right after the stop


def test_reply_holds_back_a_newline_until_it_knows():
    model = Scripted("ab\ncd\n\n")
    pieces = list(reply_stream(model, TOK, [("user", "x")], temperature=0))
    assert pieces == ["a", "b", "\nc", "d"]  # "\n" waits for the next character


def test_reply_without_stop_ends_at_max_tokens_and_strips_trailing_space():
    model = Scripted("abc  ")
    assert reply(model, TOK, [("user", "x")], temperature=0, max_new_tokens=5) == "abc"
    assert reply(Scripted("hello"), TOK, [], temperature=0, max_new_tokens=3) == "hel"
    assert reply(Scripted("\n\nabc"), TOK, [("user", "x")], temperature=0) == ""


def test_reply_crops_the_history_to_the_context():
    history = [("user", "first message"), ("bot", "first reply"), ("user", "second")]
    model = Scripted("ok\n\n", block_size=45)
    reply(model, TOK, history, temperature=0)
    assert model.seen[0] == "JULIET:\nfirst reply\n\nROMEO:\nsecond\n\nJULIET:\n"
    assert len(model.seen[0]) == 44  # the whole history would be 66


def test_reply_with_a_real_model_is_repeatable():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=1, n_head=2,
                          n_embd=16))
    history = [("user", "hello there")]
    a = reply(model, TOK, history, max_new_tokens=20, seed=3, top_k=5)
    b = "".join(reply_stream(model, TOK, history, max_new_tokens=20, seed=3, top_k=5))
    assert a == b and len(a) <= 20 and "\n\n" not in a
    assert reply(model, TOK, history, max_new_tokens=20, seed=3, top_k=0, top_p=1.0) == \
        reply(model, TOK, history, max_new_tokens=20, seed=3)  # 0 and 1.0 mean "off"


def test_reply_errors_are_value_errors():
    model = Scripted("ok\n\n")
    with pytest.raises(ValueError, match="vocabulary"):
        reply(model, TOK, [("user", "émigré")])
    with pytest.raises(ValueError, match="temperature"):
        reply(model, TOK, [("user", "hi")], temperature=-1)
    with pytest.raises(ValueError, match="stop"):
        reply(model, TOK, [("user", "hi")], stop="")
    assert STOP == "\n\n"


def test_sse_events_and_parse_sse():
    lines = [": keep-alive", "", 'data: {"token": "Go"}', "", 'data:{"token":"od\\n"}', "",
             "event: message", "id: 3", 'data: {"token": ""}', "",
             'data: {"done": true, "completion_tokens": 3, "finish_reason": "stop"}', ""]
    assert list(sse_events(lines)) == [{"token": "Go"}, {"token": "od\n"}, {"token": ""},
                                       {"done": True, "completion_tokens": 3,
                                        "finish_reason": "stop"}]
    tokens, summary = parse_sse(iter(lines))
    assert tokens == ["Go", "od\n", ""] and summary["completion_tokens"] == len(tokens)
    assert parse_sse(lines[:4]) == (["Go"], None)  # cut short: no summary
    assert parse_sse([]) == ([], None)
    with pytest.raises(RuntimeError, match="out of memory"):
        parse_sse(['data: {"token": "a"}', 'data: {"error": "out of memory"}'])
