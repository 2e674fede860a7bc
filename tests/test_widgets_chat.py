"""The chat widget, driven through its back end (no browser): send, stream, clear, names."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from gptlab.chat import chat_prompt
from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import CharTokenizer
from gptlab.widgets.chat import chat_widget

TOK = CharTokenizer("abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ:,.!?'\n")


class Scripted(nn.Module):
    """Writes ``script`` one character per call, whatever it is shown (greedy decoding)."""

    def __init__(self, script: str, block_size: int = 64) -> None:
        super().__init__()
        self.script, self.config = TOK.encode(script), SimpleNamespace(block_size=block_size)
        self.calls = 0
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, idx, targets=None):
        logits = torch.zeros(idx.shape[0], idx.shape[1], TOK.vocab_size)
        logits[:, -1, self.script[self.calls % len(self.script)]] = 10.0
        self.calls += 1
        return logits, None


def test_send_streams_a_reply_into_the_transcript():
    w = chat_widget(Scripted("Good day.\n\n"), TOK, temperature=0.0)
    frames = []
    w.transcript.observe(lambda c: frames.append(c["new"]), names="value")
    w.message.value = "Hello, fair lady"  # like pressing Enter in the box
    assert w.history == [("user", "Hello, fair lady"), ("bot", "Good day.")]
    assert w.message.value == "" and w.note == ""
    assert "ROMEO:" in w.transcript.value and "JULIET:" in w.transcript.value
    assert "Good day." in w.transcript.value and "reply: 9 characters" in w.status.value
    assert sum("▌" in f for f in frames) >= 5  # the reply was shown while it grew
    assert w.last_prompt == chat_prompt([("user", "Hello, fair lady")])


def test_send_button_names_settings_and_clear():
    w = chat_widget(Scripted("Yes\n\n"), TOK, temperature=0.0, max_new_tokens=50)
    w.user.value, w.bot.value = "HAMLET", "OPHELIA"
    w.top_k.value = 3
    assert w.settings() == {"user": "HAMLET", "bot": "OPHELIA", "max_new_tokens": 50,
                            "temperature": 0.0, "top_k": 3}
    w.message.unobserve(w._on_enter, names="value")  # as if typed without pressing Enter
    w.message.value = "To be?"
    assert w.history == []
    w.send_button.click()
    assert [role for role, _ in w.history] == ["user", "bot"]
    assert "HAMLET:" in w.transcript.value and "OPHELIA:" in w.transcript.value
    assert w.send("  ") == "" and len(w.history) == 2  # nothing to send
    assert w.send("Again") == "Yes" and len(w.history) == 4
    assert w.last_prompt.startswith("HAMLET:\nTo be?")
    w.show_prompt.value = True
    assert "what the model saw" in w.transcript.value
    w.user.value = "ROMEO"  # renaming re-renders the whole transcript
    assert "HAMLET" not in w.transcript.value.split("what the model saw")[0]
    w.clear_button.click()
    assert w.history == [] and "no messages yet" in w.transcript.value


def test_long_chat_is_cropped_to_the_context():
    w = chat_widget(Scripted("Aye, my lord.\n\n", block_size=40), TOK, temperature=0.0)
    for message in ("first", "second", "third"):
        assert w.send(message) == "Aye, my lord."
    assert len(w.history) == 6 and len(w.last_prompt) <= 40
    assert w.last_prompt.startswith("ROMEO:\nthird")


def test_errors_become_a_note_not_an_exception():
    w = chat_widget(Scripted("ok\n\n"), TOK)
    w.message.value = "café"  # é is not in the vocabulary
    assert w.history == [] and "Cannot reply" in w.note and "vocabulary" in w.status.value
    assert w.message.value == "café"  # kept, so it can be edited
    w.bot.value = "BAD:NAME"
    assert w.send("hi") == "" and "name" in w.note


def test_seeded_widget_with_a_real_model_repeats():
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=TOK.vocab_size, block_size=32, n_layer=1, n_head=2,
                          n_embd=16))
    a = chat_widget(model, TOK, seed=1, max_new_tokens=15)
    b = chat_widget(model, TOK, seed=1, max_new_tokens=15)
    assert a.send("hello") == b.send("hello")
