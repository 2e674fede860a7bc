"""gptlab.viz.tokens (token pieces and coloured boundaries) and the tokenizer explorer."""

from __future__ import annotations

import pytest

from gptlab.tokenizers import BPETokenizer, CharTokenizer
from gptlab.viz.tokens import TokenView, show_tokens, token_spans, tokens_html
from gptlab.widgets.tokenizer_explorer import ALL, explorer_html, tokenizer_explorer

TEXT = "the cat sat on the mat. the cat ate the rat! naïve café 😀 " * 4


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer(pattern="gpt2", special_tokens=["<|endoftext|>"]).train(
        TEXT, vocab_size=280, progress=False)


def test_char_spans():
    tok = CharTokenizer("abc")
    assert token_spans(tok, "cab") == [(2, "c"), (0, "a"), (1, "b")]
    assert token_spans(tok, "") == []


def test_bpe_spans_join_to_text_and_ids_match_encode(bpe):
    text = "the cat ate the mat, the rat sat."  # ASCII: every token holds whole characters
    spans = token_spans(bpe, text)
    assert [i for i, _ in spans] == bpe.encode(text)
    assert "".join(p for _, p in spans) == text
    assert any(len(p) > 1 for _, p in spans)  # merged tokens hold several characters


def test_partial_characters_show_as_bytes(bpe):
    spans = token_spans(bpe, "🙂")  # never seen: 4 byte tokens, none valid UTF-8 alone
    assert [i for i, _ in spans] == list("🙂".encode())
    assert [p for _, p in spans] == ["\\xf0", "\\x9f", "\\x99", "\\x82"]
    page = tokens_html(bpe, "🙂")
    assert page.count("dashed") == 4 and "part of a character" in page


def test_special_tokens(bpe):
    with pytest.raises(ValueError, match="special token"):
        token_spans(bpe, "a<|endoftext|>b")
    spans = token_spans(bpe, "a<|endoftext|>b", allowed_special="all")
    assert (bpe.special_tokens["<|endoftext|>"], "<|endoftext|>") in spans


def test_html_escapes_and_summarises(bpe):
    text = "<b>the</b> & cat\nrat"
    page = tokens_html(bpe, text, title="mine")
    n = len(bpe.encode(text))
    assert f"{n} tokens for {len(text)} characters" in page
    assert "<b>mine</b>" in page and "<b>the" not in page and "&lt;" in page and "&amp;" in page
    assert "⏎" in page and "<br>" in page
    ids_shown = tokens_html(bpe, text, show_ids=True)
    no_ids = tokens_html(bpe, text, show_ids=False)
    assert str(bpe.encode(text)[0]) in ids_shown and "flex-direction" not in no_ids
    short = tokens_html(bpe, TEXT, max_tokens=5)
    assert "showing the first 5" in short and short.count("title=") == 5


def test_show_tokens_repr_and_html(bpe):
    view = show_tokens(CharTokenizer("hello"), "hello")
    assert isinstance(view, TokenView)
    assert repr(view) == "[h][e][l][l][o]"
    assert "5 tokens for 5 characters, 1.00 tokens per character" in view._repr_html_()


def test_unknown_character_raises():
    with pytest.raises(ValueError, match="not in the vocabulary"):
        token_spans(CharTokenizer("abc"), "abz")
    with pytest.raises(TypeError):
        token_spans(CharTokenizer("abc"), b"abc")


def test_explorer_html(bpe):
    toks = {"chars": CharTokenizer(TEXT), "bpe": bpe}
    one = explorer_html(toks, "bpe", "the cat")
    assert "<b>bpe</b>" in one and "<b>chars</b>" not in one
    both = explorer_html(toks, ALL, "the cat")
    assert "<b>bpe</b>" in both and "<b>chars</b>" in both
    err = explorer_html(toks, ALL, "zebra<|endoftext|>")
    assert "cannot encode" in err  # chars has never seen 'z'
    assert str(bpe.special_tokens["<|endoftext|>"]) in err  # bpe shows the special id
    with pytest.raises(ValueError, match="unknown tokenizer"):
        explorer_html(toks, "gpt-5", "x")


def test_explorer_widget_updates(bpe):
    w = tokenizer_explorer({"chars": CharTokenizer(TEXT), "bpe": bpe, "gpt2": None},
                           text="the cat")
    assert list(w.choice.options) == ["chars", "bpe", ALL]
    assert "7 tokens for 7 characters" in w.view.value
    w.choice.value = "bpe"
    assert "<b>bpe</b>" in w.view.value
    w.text.value = "the rat"
    assert f"{len(bpe.encode('the rat'))} tokens for 7 characters" in w.view.value
    w.show_ids.value = False
    assert "flex-direction" not in w.view.value
    with pytest.raises(ValueError, match="at least one"):
        tokenizer_explorer({"gpt2": None})
