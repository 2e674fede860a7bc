"""gptlab.evaluate (loss over a whole text, perplexity, bits per byte, memorisation) and
gptlab.viz.evaluation.compare_runs. Tiny models, one CPU thread."""

from __future__ import annotations

import json
import math
import random

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gptlab.evaluate import (
    EvalResult,
    Overlap,
    bits_per_byte,
    evaluate,
    longest_overlap,
    memorized_spans,
    perplexity,
)
from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import BPETokenizer, CharTokenizer
from gptlab.viz.evaluation import compare_runs, eval_curve

TEXT = "It was the best of times, it was the worst of times, it was the age of wisdom. " * 3
TOK = CharTokenizer(TEXT)


def tiny(vocab_size: int = TOK.vocab_size, block_size: int = 8, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=2,
                         n_embd=16))


def uniform(vocab_size: int) -> GPT:
    m = tiny(vocab_size)
    torch.nn.init.zeros_(m.wte.weight)  # lm_head is tied to it: every logit is 0
    return m


# ---------------------------------------------------------------------------- metrics


def test_uniform_char_model_has_log2_vocab_bits_per_byte():
    r = evaluate(uniform(TOK.vocab_size), TEXT, TOK, progress=False)
    V = TOK.vocab_size
    assert isinstance(r, EvalResult)
    assert r.loss == pytest.approx(math.log(V)) and r.perplexity == pytest.approx(V)
    assert r.tokens == len(TEXT) - 1 and r.bytes == len(TEXT) - 1  # ASCII: 1 byte a token
    assert r.bits_per_byte == pytest.approx(math.log2(V)) == pytest.approx(r.bits_per_token)
    assert "bits/byte" in str(r)


def test_uniform_bpe_model_bits_per_byte_scales_with_bytes_per_token():
    text = "naïve café, déjà vu: the cat sat on the mat with the hat. " * 3
    tok = BPETokenizer(pattern="gpt2").train(text, vocab_size=280, progress=False)
    r = evaluate(uniform(tok.vocab_size), text, tok, batch_size=3, progress=False)
    ids = tok.encode(text)
    n_bytes = len(tok.decode_bytes(ids[1:]))  # the text the loss covers
    assert r.tokens == len(ids) - 1 and r.bytes == n_bytes < len(text.encode())
    assert r.bits_per_byte == pytest.approx(math.log2(tok.vocab_size) * r.tokens / n_bytes)
    assert r.bits_per_byte < math.log2(tok.vocab_size)  # several bytes per token


def test_bits_per_byte_and_perplexity_formulas():
    assert bits_per_byte(math.log(2), 10, 10) == pytest.approx(1.0)
    assert bits_per_byte(2.0, 100, 400) == pytest.approx(2.0 * 100 / (math.log(2) * 400))
    assert perplexity(0.0) == 1.0 and perplexity(math.log(50)) == pytest.approx(50)
    assert perplexity(1e6) == math.inf
    with pytest.raises(ValueError, match="n_bytes > 0"):
        bits_per_byte(1.0, 10, 0)


# ---------------------------------------------------------------------------- evaluate


def brute_force_sum(model: GPT, ids: list[int], T: int, stride: int) -> float:
    """Each target scored once, with the context its window gives it, one at a time."""
    total, start, done = 0.0, 0, 0
    n = len(ids)
    while True:
        end = min(start + T, n - 1)
        for t in range(max(done, start) + 1, end + 1):  # target position t
            logits, _ = model(torch.tensor([ids[start:t]]))
            total += F.cross_entropy(logits[0, -1], torch.tensor(ids[t])).item()
        if end == n - 1:
            return total
        done, start = end, start + stride


@pytest.mark.parametrize("stride, batch_size", [(None, 8), (None, 1), (3, 2), (1, 4), (8, 3)])
def test_evaluate_scores_every_token_once_with_its_window_context(stride, batch_size):
    m = tiny()
    ids = TOK.encode(TEXT[:45])
    m.eval()
    with torch.no_grad():
        expected = brute_force_sum(m, ids, 8, stride or 8) / (len(ids) - 1)
    m.train()
    r = evaluate(m, ids, block_size=None, batch_size=batch_size, stride=stride, progress=False)
    assert r.loss == pytest.approx(expected, rel=1e-5)
    assert r.tokens == len(ids) - 1 and r.bytes is None and r.bits_per_byte is None
    assert m.training  # the mode it had


def test_evaluate_accepts_text_ids_and_tensors_alike():
    m = tiny()
    a = evaluate(m, TEXT, TOK, progress=False)
    b = evaluate(m, torch.tensor(TOK.encode(TEXT)), TOK, block_size=8, progress=True)
    c = evaluate(m, TOK.encode(TEXT), progress=False)
    assert a == b and a.loss == pytest.approx(c.loss)
    short = evaluate(m, TEXT, TOK, block_size=4, progress=False)  # less context, worse or not:
    assert short.tokens == a.tokens  # but the same tokens scored


@pytest.mark.parametrize("kwargs, message", [
    ({"tokens_or_text": "it was"}, "no tokenizer"),
    ({"tokens_or_text": [3]}, "at least 2"),
    ({"tokens_or_text": torch.tensor([1.5, 2.5])}, "integer token ids"),
    ({"block_size": 9}, "larger than the model's context"),
    ({"block_size": 0}, "block_size must be a positive integer"),
    ({"stride": 9}, "stride=9 is larger than block_size=8"),
    ({"stride": 0}, "stride must be a positive integer"),
    ({"batch_size": 0}, "batch_size must be a positive integer"),
])
def test_evaluate_bad_input(kwargs, message):
    args = {"tokens_or_text": TOK.encode(TEXT), "progress": False, **kwargs}
    with pytest.raises(ValueError, match=message):
        evaluate(tiny(), **args)


# ---------------------------------------------------------------------------- memorisation


def brute_spans(gen: str, train: str, min_len: int) -> list[Overlap]:
    """All maximal common stretches (every alignment), then the same selection rule."""
    best: dict[tuple[int, int], int] = {}
    for d in range(-len(gen), len(train)):
        i = max(0, -d)
        while i < len(gen) and i + d < len(train):
            j = i
            while j < len(gen) and j + d < len(train) and gen[j] == train[j + d]:
                j += 1
            if j - i >= min_len:
                best[(i, j - i)] = min(best.get((i, j - i), i + d), i + d)
            i = j + 1
    out, reach = [], -1
    for (s, n), t in sorted(best.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        if s + n > reach:
            out.append(Overlap(s, n, t))
            reach = s + n
    return out


@settings(max_examples=150, deadline=None)
@given(st.text("ab", max_size=30), st.text("ab", max_size=60), st.integers(1, 7))
def test_memorized_spans_and_longest_overlap_match_brute_force(gen, train, min_len):
    assert memorized_spans(gen, train, min_len) == brute_spans(gen, train, min_len)
    best = longest_overlap(gen, train)
    every = brute_spans(gen, train, 1)
    if not every:
        assert best is None
    else:
        assert best is not None and best.length == max(o.length for o in every)
        s, n, t = best
        assert gen[s:s + n] == train[t:t + n]


@pytest.fixture(scope="module")
def big_random_text():
    rng = random.Random(0)
    alphabet = "abcdefghijklmnopqrstuvwxyz     \n.,"
    return "".join(rng.choices(alphabet, k=1_000_000)), "".join(rng.choices(alphabet, k=4000))


def test_memorisation_checker_finds_a_planted_copy_in_a_megabyte(big_random_text):
    train, gen = big_random_text
    assert memorized_spans(gen, train, min_len=50) == []  # random text: no false positives
    planted = gen[:1500] + "#" + train[654_321:654_321 + 120] + "#" + gen[1500:]
    assert memorized_spans(planted, train, min_len=50) == [Overlap(1501, 120, 654_321)]
    assert memorized_spans(planted, train, min_len=121) == []
    twice = planted + train[10:70]  # a second, shorter copy at the end
    assert memorized_spans(twice, train) == [Overlap(1501, 120, 654_321),
                                             Overlap(len(planted), 60, 10)]


def test_longest_overlap_on_a_larger_text(big_random_text):
    train, gen = big_random_text
    train = train[:200_000]
    planted = gen[:700] + "#" + train[99_000:99_077] + "#" + gen[700:]
    assert longest_overlap(planted, train) == Overlap(701, 77, 99_000)
    assert longest_overlap("xyz", "abc") is None


def test_memorisation_bad_input():
    with pytest.raises(ValueError, match="min_len must be a positive integer"):
        memorized_spans("abc", "abc", min_len=0)
    with pytest.raises(TypeError, match="generated must be a str"):
        memorized_spans([1, 2], "abc")
    with pytest.raises(TypeError, match="training_text must be a str"):
        longest_overlap("abc", b"abc")
    assert memorized_spans("", "abc", 1) == [] and memorized_spans("abc", "", 1) == []


# ---------------------------------------------------------------------------- compare_runs


def test_compare_runs_draws_one_line_per_run(tmp_path):
    a = [{"kind": "eval", "step": s, "val_loss": 3.0 - s / 10} for s in (0, 5, 10)]
    b = [{"kind": "train", "step": 1, "loss": 2.0},
         {"kind": "eval", "step": 0, "val_loss": 3.1}, {"kind": "eval", "step": 10,
                                                         "val_loss": 2.5}]
    log = tmp_path / "run_b"
    log.mkdir()
    (log / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in b))
    assert eval_curve(log) == ([0, 10], [3.1, 2.5])
    fig = compare_runs({"a": a, "b": log})
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a (best 2.000)", "b (best 2.500)"]
    plt.close(fig)
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        compare_runs({"c": tmp_path / "missing"})
    with pytest.raises(ValueError, match="no evaluation records"):
        compare_runs({"d": [{"kind": "train", "step": 1, "loss": 1.0}]})
