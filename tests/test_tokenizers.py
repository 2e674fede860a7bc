"""Tests of gptlab.tokenizers: CharTokenizer, BPETokenizer (trained), the plain reference.

GPT-2's own tokenizer is tested in test_tokenizers_gpt2.py.
"""

from __future__ import annotations

import doctest
import importlib
import json
import runpy
import sys
import warnings
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gptlab.tokenizers import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    CharTokenizer,
    bpe_merge,
    clean_surrogates,
    get_stats,
    load_tokenizer,
    merge,
    train_bpe,
    train_bpe_plain,
)
from gptlab.tokenizers.reference import decode_plain, encode_plain, split_chunks

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN, None: None}
SPECIALS = ["<|endoftext|>", "<|pad|>"]

TRAIN_TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak. We're sure it's the 1st of 12,345 days; they'll say I've won!\n"
    "    indented    lines\twith\ttabs\r\n and   runs   of   spaces.\n"
    "日本語のテキストも少し。中文也有一点。 한국어 텍스트. Ελληνικά, русский текст.\n"
    "Emoji 😀🎉👍🏽 and combining marks: e\u0301 a\u0308 n\u0303; NUL \x00 and BEL \x07.\n"
) * 4

# Text that stresses every part: scripts, emoji, combining marks, controls, NUL, whitespace.
SPECIAL_CHARS = ["😀", "👍🏽", "👨‍👩‍👧", "日本", "\u0301", "\x00", "\x07", "\r\n", "\t",
                 " " * 17, "\n\n\n", "\u00a0", "\u2028", "\ufeff", "'s", "'ll", "123456",
                 "<|endoftext|>", "<|pad", "|>"]
texts = st.lists(st.one_of(st.text(max_size=8), st.sampled_from(SPECIAL_CHARS)),
                 max_size=12).map("".join)
# Lone surrogates and surrogate pairs among ordinary text (st.text() never makes them).
surrogate_texts = st.lists(st.one_of(st.text(max_size=4), st.integers(0xD800, 0xDFFF).map(chr),
                                     st.just("\ud83d\ude00")), max_size=12).map("".join)
# Few distinct characters, so that pairs repeat and training has ties and overlaps ("aaa").
small_texts = st.text(alphabet="aab  \n'sé😀1.", max_size=120)


@pytest.fixture(scope="module", params=list(PATTERNS), ids=lambda p: f"pattern={p}")
def trained(request) -> BPETokenizer:
    """A tokenizer with special tokens trained on TRAIN_TEXT, for each pattern."""
    return BPETokenizer(request.param, special_tokens=SPECIALS).train(
        TRAIN_TEXT, vocab_size=400, progress=False)


# -- CharTokenizer ----------------------------------------------------------------------

def test_char_roundtrip_and_vocab():
    tok = CharTokenizer("hello world")
    assert tok.chars == sorted(set("hello world")) and tok.vocab_size == 8 == len(tok)
    assert tok.encode("hello") == [tok.stoi[c] for c in "hello"]
    assert tok.decode(tok.encode("low rod")) == "low rod"
    assert tok.decode(torch.tensor(tok.encode("old"))) == "old"  # tensors work too
    assert CharTokenizer.fit("hello world").chars == tok.chars


@settings(max_examples=50, deadline=None)
@given(text=st.one_of(texts, surrogate_texts).filter(bool))
def test_char_roundtrip_any_text(text):
    tok = CharTokenizer(text)
    assert tok.decode(tok.encode(text)) == text  # surrogates included: they are characters


def test_char_unseen_character_error():
    tok = CharTokenizer("abc")
    with pytest.raises(ValueError, match=r"'z' at position 3 .*fit the tokenizer on text"):
        tok.encode("abcz")


@pytest.mark.parametrize("ids", [[0, 3], [-1]])
def test_char_decode_out_of_range(ids):
    with pytest.raises(ValueError, match=f"id {ids[-1]} .*vocab_size 3"):
        CharTokenizer("abc").decode(ids)


def test_char_empty_text():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer("")


def test_char_save_load(tmp_path):
    text = "Hello 世界 😀\n\x00\t\ud800"  # a lone surrogate is just another character here
    tok = CharTokenizer(text)
    tok.save(tmp_path / "char.json")
    data = json.loads((tmp_path / "char.json").read_text(encoding="utf-8"))
    assert data["format"] == "gptlab-char-tokenizer" and data["version"] == 1
    loaded = CharTokenizer.load(tmp_path / "char.json")
    assert loaded.chars == tok.chars and loaded.encode(text) == tok.encode(text)
    assert isinstance(load_tokenizer(tmp_path / "char.json"), CharTokenizer)


# -- the plain reference -----------------------------------------------------------------

@pytest.mark.parametrize("module", ["reference", "bpe", "char", "gpt2"])
def test_docstring_examples(module):
    mod = importlib.import_module(f"gptlab.tokenizers.{module}")
    assert doctest.testmod(mod).failed == 0


def test_reference_functions():
    assert get_stats([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert merge([1, 2, 3, 1, 2], (1, 2), 4) == [4, 3, 4]
    assert merge([5, 5, 5, 5, 5], (5, 5), 6) == [6, 6, 5]


def test_tie_break_smallest_pair():
    # Every pair occurs once: the smallest (a, b), here (97, 98) = "ab", is merged first.
    assert train_bpe_plain("zyab", 257) == {(97, 98): 256}
    assert BPETokenizer(None).train("zyab", 257).merges == {(97, 98): 256}


def test_plain_counts_within_chunks_only():
    # "a b" with the GPT-2 pattern is the chunks "a", " b": the pair (a, space) never exists.
    assert train_bpe_plain("a b", 300, pattern=GPT2_SPLIT_PATTERN) == {(32, 98): 256}


@pytest.mark.parametrize("pattern", list(PATTERNS))
@settings(max_examples=60, deadline=None)
@given(text=st.one_of(small_texts, texts), vocab_size=st.integers(256, 290))
def test_fast_training_equals_plain(pattern, text, vocab_size):
    text = clean_surrogates(text)
    plain = train_bpe_plain(text, vocab_size, pattern=PATTERNS[pattern])
    words: dict[bytes, int] = {}
    for chunk in split_chunks(text, PATTERNS[pattern]):
        words[chunk.encode()] = words.get(chunk.encode(), 0) + 1
    assert train_bpe(words, vocab_size, progress=False) == plain
    if text:  # the tokenizer's own pre-split and training give the same merges
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tok = BPETokenizer(pattern).train(text, vocab_size, progress=False)
        assert tok.merges == plain
        assert bool(caught) == (len(plain) < vocab_size - 256)  # warns when it stops early


def test_fast_training_equals_plain_on_real_text():
    plain = train_bpe_plain(TRAIN_TEXT, 360, pattern=GPT2_SPLIT_PATTERN)
    assert BPETokenizer("gpt2").train(TRAIN_TEXT, 360, progress=False).merges == plain
    # Special tokens split the training text: no merge crosses or learns from them.
    text = "hello<|endoftext|>hello world<|endoftext|>"
    tok = BPETokenizer("gpt2", special_tokens=["<|endoftext|>"]).train(text, 263)
    assert tok.merges == train_bpe_plain(["hello", "hello world"], 262, GPT2_SPLIT_PATTERN)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ids=st.lists(st.sampled_from([97, 98, 256, 257]), max_size=40))
def test_bpe_merge_equals_repeated_merge(ids):
    merges = {(97, 97): 256, (256, 97): 257, (97, 98): 258, (256, 256): 259, (98, 257): 260}
    expected = list(ids)
    while True:  # the plain rule: merge the lowest-rank pair present, everywhere
        ranked = [p for p in get_stats(expected) if p in merges]
        if not ranked:
            break
        pair = min(ranked, key=merges.__getitem__)
        expected = merge(expected, pair, merges[pair])
    assert bpe_merge(list(ids), merges) == expected


# -- BPETokenizer: round trips -----------------------------------------------------------

@settings(max_examples=80, deadline=None)
@given(text=texts)
def test_roundtrip(trained, text):
    ids = trained.encode(text, allowed_special="all")
    assert trained.decode(ids) == text
    assert trained.decode(trained.encode(text, allowed_special="none")) == text
    assert all(0 <= i < trained.vocab_size for i in ids)


@settings(max_examples=40, deadline=None)
@given(text=texts)
def test_encode_equals_plain_encode(trained, text):
    pattern = PATTERNS[trained.pattern_name]
    ids = trained.encode(text, allowed_special="none")
    assert ids == encode_plain(text, trained.merges, pattern)
    assert decode_plain(ids, trained.merges) == text


def test_roundtrip_untrained_and_unsplit():
    for tok in (BPETokenizer(), BPETokenizer(None)):
        text = "plain bytes ✓ 😀"
        assert tok.encode(text) == list(text.encode()) and tok.decode(tok.encode(text)) == text
    tok = BPETokenizer(None).train(TRAIN_TEXT, 300, progress=False)
    assert tok.decode(tok.encode(TRAIN_TEXT)) == TRAIN_TEXT


@pytest.mark.parametrize("text, cleaned", [
    ("a\ud800b", "a\ufffdb"),               # lone high surrogate -> U+FFFD
    ("\udfff", "\ufffd"),                   # lone low surrogate
    ("x\ud83d\ude00y", "x😀y"),            # a pair of surrogate code points -> the character
    ("\ude00\ud83d", "\ufffd\ufffd"),       # the wrong order is two lone surrogates
])
def test_lone_surrogates(trained, text, cleaned):
    assert clean_surrogates(text) == cleaned
    assert trained.decode(trained.encode(text)) == cleaned
    assert trained.encode(text) == trained.encode(cleaned)


@settings(max_examples=60, deadline=None)
@given(text=surrogate_texts)
def test_surrogates_property(trained, text):
    cleaned = clean_surrogates(text)
    cleaned.encode("utf-8")  # always encodable
    assert trained.decode(trained.encode(text, allowed_special="all")) == cleaned
    if not any("\ud800" <= c <= "\udfff" for c in text):
        assert cleaned == text


def test_decode_partial_utf8_is_replaced():
    tok = BPETokenizer()
    ids = tok.encode("é")  # two bytes, two tokens
    assert tok.decode(ids[:1]) == "\ufffd" and tok.decode_bytes(ids[:1]) == b"\xc3"


def test_encode_batch(trained):
    batch = ["hello world", "", "speak 😀"]
    assert trained.encode_batch(batch) == [trained.encode(t) for t in batch]


# -- special tokens ----------------------------------------------------------------------

def test_special_tokens_ids_and_allowed(trained):
    n = trained.vocab_size
    assert trained.special_tokens == {"<|endoftext|>": n - 2, "<|pad|>": n - 1}
    text = "hi<|endoftext|>there<|pad|>"
    ids = trained.encode(text, allowed_special="all")
    assert ids.count(n - 2) == 1 and ids[-1] == n - 1
    assert trained.decode(ids) == text
    only_eot = trained.encode(text.replace("<|pad|>", ""), allowed_special={"<|endoftext|>"})
    assert n - 2 in only_eot
    as_text = trained.encode(text, allowed_special="none")
    assert n - 2 not in as_text and trained.decode(as_text) == text


def test_special_token_not_allowed(trained):
    with pytest.raises(ValueError, match=r"'<\|pad\|>' \(at position 2\).*allowed_special"):
        trained.encode("hi<|pad|>")
    with pytest.raises(ValueError, match=r"<\|pad\|>"):  # allowed: only the other one
        trained.encode("<|endoftext|><|pad|>", allowed_special={"<|endoftext|>"})
    with pytest.raises(ValueError, match="not special tokens"):
        trained.encode("hi", allowed_special={"<|nope|>"})
    with pytest.raises(ValueError, match="allowed_special"):
        trained.encode("hi", allowed_special="some")


def test_training_ignores_special_tokens():
    tok = BPETokenizer(special_tokens=["<|endoftext|>"]).train(
        "<|endoftext|>" * 50 + "ab ab", 259)
    assert all(b"<|" not in tok.vocab[i] for i in tok.merges.values())


# -- save / load -------------------------------------------------------------------------

def test_save_load_identical(trained, tmp_path):
    path = tmp_path / "sub" / "tok.json"
    trained.save(path, vocab_view=True)
    assert sorted(p.name for p in path.parent.iterdir()) == ["tok.json", "tok.vocab"]
    loaded = BPETokenizer.load(path)
    assert loaded.merges == trained.merges and loaded.special_tokens == trained.special_tokens
    assert loaded.pattern == trained.pattern and loaded.vocab_size == trained.vocab_size
    text = TRAIN_TEXT + "<|endoftext|>" + "<|pad|>"
    assert loaded.encode(text, allowed_special="all") == trained.encode(text,
                                                                        allowed_special="all")
    assert isinstance(load_tokenizer(path), BPETokenizer)


def test_file_is_readable_json(trained, tmp_path):
    trained.save(tmp_path / "tok.json")
    raw = (tmp_path / "tok.json").read_text(encoding="utf-8")
    data = json.loads(raw)
    assert data["format"] == "gptlab-bpe-tokenizer" and data["version"] == 1
    assert data["pattern_name"] == trained.pattern_name
    assert data["vocab_size"] == trained.vocab_size
    assert data["special_tokens"] == trained.special_tokens
    assert data["merges"] == [list(p) for p in trained.merges]
    first = next(iter(trained.merges))
    assert f"    [{first[0]}, {first[1]}]," in raw.splitlines()  # one merge per line


def test_vocab_table(trained):
    table = trained.vocab_table()
    lines = table.splitlines()
    assert len(lines) == 2 + trained.vocab_size
    assert "    32  [ ]" in lines  # the space byte
    assert "    10  [\\n]" in lines  # control characters are escaped
    (a, b), new = next(iter(trained.merges.items()))
    merged = next(line for line in lines if line.startswith(f"{new:>6}  "))
    assert f"<-  {a} [" in merged and f"+ {b} [" in merged
    assert "[<|pad|>]  special token" in table


def test_save_is_atomic(trained, tmp_path, monkeypatch):
    path = tmp_path / "tok.json"
    trained.save(path)
    before = path.read_text(encoding="utf-8")

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", crash)
    with pytest.raises(OSError):
        BPETokenizer().save(path)
    assert path.read_text(encoding="utf-8") == before  # the good file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["tok.json"]  # no temp file left


# -- bad input ---------------------------------------------------------------------------

def test_vocab_size_too_small():
    with pytest.raises(ValueError, match=r"at least 256 .* \+ 2 special tokens = 258"):
        BPETokenizer(special_tokens=SPECIALS).train("hello", 257)


def test_empty_training_text():
    with pytest.raises(ValueError, match="empty"):
        BPETokenizer().train("", 300)
    with pytest.raises(ValueError, match="empty"):
        BPETokenizer(special_tokens=["<s>"]).train("<s><s>", 300)


def test_vocab_size_larger_than_text_allows_stops_with_warning():
    with pytest.warns(UserWarning, match="stopped at vocab_size 258"):
        tok = BPETokenizer().train("abc", 1000)
    assert tok.vocab_size == 258 and tok.decode(tok.encode("abc")) == "abc"


@pytest.mark.parametrize("ids", [[0, 400], [-1]])
def test_decode_out_of_range(trained, ids):
    with pytest.raises(ValueError, match=f"id {ids[-1]} .*vocab_size {trained.vocab_size}"):
        trained.decode(ids)


def test_bad_pattern():
    with pytest.raises(ValueError, match="pattern"):
        BPETokenizer(pattern="gpt2(")
    tok = BPETokenizer(pattern=r"\w+|\W+").train("ab ab ab", 257)  # a custom regex
    assert tok.pattern_name == "custom" and tok.decode(tok.encode("ab, ab")) == "ab, ab"


def _good_file(tmp_path: Path) -> Path:
    path = tmp_path / "tok.json"
    BPETokenizer(special_tokens=["<s>"]).train(TRAIN_TEXT, 280, progress=False).save(path)
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda raw: raw[: len(raw) // 2], "not valid JSON"),               # truncated
    (lambda raw: "\x00\xff garbage", "not valid JSON"),                 # corrupted
    (lambda raw: '{"model": {"type": "BPE"}}', "not a gptlab tokenizer"),  # foreign JSON
    (lambda raw: "[1, 2, 3]", "not a gptlab tokenizer"),
    (lambda raw: raw.replace('"version": 1', '"version": 99'), "version 99"),
    (lambda raw: raw.replace('"vocab_size": 280', '"vocab_size": 300'), "vocab_size"),
    (lambda raw: raw.replace('"merges": [\n    [', '"merges": [\n    [999, 0], ['),
     "merge 0"),
    (lambda raw: raw.replace('"byte_ids": [\n    0,', '"byte_ids": [\n    1,'), "byte_ids"),
    (lambda raw: raw.replace('"merges"', '"merge_list"'), "not a valid"),
])
def test_load_damaged_file(tmp_path, damage, message):
    path = _good_file(tmp_path)
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        BPETokenizer.load(path)


def test_load_wrong_kind_and_missing(tmp_path):
    CharTokenizer("abc").save(tmp_path / "char.json")
    with pytest.raises(ValueError, match="CharTokenizer.load"):
        BPETokenizer.load(tmp_path / "char.json")
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        BPETokenizer.load(tmp_path / "missing.json")


def test_verbose_and_repr(capsys):
    tok = BPETokenizer().train("aaab aaab", 258, verbose=True)
    assert "merge 1/2" in capsys.readouterr().out
    assert repr(tok) == "BPETokenizer(pattern='gpt2', vocab_size=258, special_tokens=[])"


# -- the benchmark script ----------------------------------------------------------------

def test_benchmark_smoke(monkeypatch, capsys):
    # In this process (importing torch again in a subprocess would cost seconds).
    monkeypatch.setattr(sys, "argv", ["tokenizers.py", "--smoke"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script edits sys.path
    runpy.run_path(str(ROOT / "benchmarks" / "tokenizers.py"), run_name="__main__")
    result = capsys.readouterr().out.strip().splitlines()[-1]
    assert result.startswith("RESULT ") and "merges_identical=True" in result

