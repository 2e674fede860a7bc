"""gptlab.generate (filters, KV cache, generate / stream), the sampling playground, and the
generation benchmark's smoke run."""

from __future__ import annotations

import math
import runpy
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.testing import assert_close

from gptlab.attention import KVCache
from gptlab.bigram import BigramLM
from gptlab.generate import (
    StaticKVCache,
    apply_repetition_penalty,
    apply_temperature,
    generate,
    next_token_distribution,
    sampling_probs,
    stream,
    top_k_filter,
    top_p_filter,
)
from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import CharTokenizer
from gptlab.viz.sampling import playground_step, plot_next_token, top_tokens
from gptlab.widgets.sampling_playground import sampling_playground

ROOT = Path(__file__).resolve().parents[1]
V, BLOCK = 23, 16
INF = float("inf")


def tiny(positional: str = "learned", seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = {"vocab_size": V, "block_size": BLOCK, "n_layer": 2, "n_head": 2, "n_embd": 16,
           "positional": positional}
    return GPT(GPTConfig(**{**cfg, **kw}))


@pytest.fixture(scope="module")
def model() -> GPT:
    return tiny()


class Recorder(nn.Module):
    """Wraps a GPT: records the last position's logits and the input length of every call."""

    def __init__(self, gpt: GPT) -> None:
        super().__init__()
        self.gpt, self.config = gpt, gpt.config
        self.logits: list[torch.Tensor] = []
        self.fed: list[int] = []

    def new_kv_caches(self):
        return self.gpt.new_kv_caches()

    def forward(self, idx, targets=None, kv_caches=None):
        logits, loss = self.gpt(idx, targets, kv_caches=kv_caches)
        self.logits.append(logits[:, -1].clone())
        self.fed.append(idx.shape[1])
        return logits, loss


class Counter(nn.Module):
    """No KV cache, no block_size: always predicts (last token + 1) mod V, very confidently."""

    def forward(self, idx, targets=None):
        return 20.0 * nn.functional.one_hot((idx + 1) % V, V).float(), None


def letters(ids) -> str:
    return "".join(chr(ord("a") + int(i)) for i in ids)


# ---------------------------------------------------------------------------- filters


def test_temperature():
    logits = torch.tensor([1.0, 3.0, 3.0, -2.0])
    assert_close(apply_temperature(logits, 2.0), logits / 2)
    assert_close(apply_temperature(logits, 1), logits)
    assert apply_temperature(logits, 0).tolist() == [-INF, 0.0, -INF, -INF]  # ties: lowest id
    probs = sampling_probs(logits, temperature=0.5)
    assert_close(probs, torch.softmax(logits * 2, -1))
    assert sampling_probs(logits, temperature=1e-30).tolist() == [0.0, 0.5, 0.5, 0.0]  # finite


def test_top_k_against_hand_computed():
    logits = torch.tensor([[1.0, 4.0, 2.0, 3.0], [0.0, 0.0, 5.0, 0.0]])
    assert top_k_filter(logits, 2).tolist() == [[-INF, 4.0, -INF, 3.0],
                                                [0.0, 0.0, 5.0, 0.0]]  # ties with the kth kept
    assert top_k_filter(logits, 1)[0].tolist() == [-INF, 4.0, -INF, -INF]
    assert torch.equal(top_k_filter(logits, 4), logits) and torch.equal(
        top_k_filter(logits, 99), logits)
    probs = sampling_probs(torch.tensor([0.5, 0.3, 0.2]).log(), top_k=2)
    assert_close(probs, torch.tensor([0.625, 0.375, 0.0]))


def test_top_p_against_hand_computed():
    logits = torch.tensor([0.125, 0.5, 0.25, 0.125]).log()  # sorted: id 1, 2, 0, 3

    def kept(p):
        return top_p_filter(logits, p).isfinite().nonzero().flatten().tolist()

    assert kept(0.3) == [1] and kept(0.5) == [1]  # 0.5 alone reaches p
    assert kept(0.6) == [1, 2] and kept(0.75) == [1, 2]
    assert kept(0.8) == [0, 1, 2]  # of the tied 0.125s, the lower id first
    assert kept(1.0) == [0, 1, 2, 3] and kept(1e-9) == [1]  # always at least one
    assert_close(sampling_probs(logits, top_p=0.6), torch.tensor([0.0, 2 / 3, 1 / 3, 0.0]))
    batch = torch.stack([logits, logits.flip(0)])
    assert top_p_filter(batch, 0.5).isfinite().tolist() == [[False, True, False, False],
                                                            [False, False, True, False]]
    flat = torch.zeros(5)  # uniform: p = 0.5 needs 3 of 5 tokens
    assert top_p_filter(flat, 0.5).isfinite().sum() == 3


def test_filters_combine_in_order():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0, -3.0])
    probs = sampling_probs(logits, torch.tensor([0]), temperature=0.7, top_k=3, top_p=0.8,
                           repetition_penalty=1.5)
    manual = apply_repetition_penalty(logits, torch.tensor([0]), 1.5)
    manual = top_p_filter(top_k_filter(apply_temperature(manual, 0.7), 3), 0.8)
    assert_close(probs, torch.softmax(manual, -1))
    assert math.isclose(float(probs.sum()), 1.0, rel_tol=1e-6)


def test_repetition_penalty_convention():
    logits = torch.tensor([2.0, -1.0, 0.5, 3.0])
    out = apply_repetition_penalty(logits, torch.tensor([0, 1, 1]), 2.0)
    assert out.tolist() == [1.0, -2.0, 0.5, 3.0]  # positive / p, negative * p, once each
    assert logits.tolist() == [2.0, -1.0, 0.5, 3.0]  # input untouched
    batch = apply_repetition_penalty(logits.expand(2, 4), torch.tensor([[3], [1]]), 0.5)
    assert batch.tolist() == [[2.0, -1.0, 0.5, 6.0], [2.0, -0.5, 0.5, 3.0]]


def test_repetition_penalty_matches_transformers():
    processors = pytest.importorskip("transformers.generation.logits_process")
    torch.manual_seed(0)
    scores, ids = torch.randn(3, 40), torch.randint(0, 40, (3, 12))
    ref = processors.RepetitionPenaltyLogitsProcessor(1.3)(ids, scores.clone())
    assert_close(apply_repetition_penalty(scores, ids, 1.3), ref)


# ---------------------------------------------------------------------------- KV cache


def test_static_cache_matches_concatenating_cache():
    static, simple = StaticKVCache(8), KVCache()
    for T in (3, 1, 1, 2):
        k, v = torch.randn(2, 2, T, 4), torch.randn(2, 2, T, 4)
        for a, b in zip(static.update(k, v), simple.update(k, v)):
            assert torch.equal(a, b)
    assert static.pos == simple.pos == 7
    with pytest.raises(ValueError, match="full"):
        static.update(torch.randn(2, 2, 2, 4), torch.randn(2, 2, 2, 4))
    with pytest.raises(ValueError, match="reset"):
        static.update(torch.randn(1, 2, 1, 4), torch.randn(1, 2, 1, 4))
    static.reset()
    k, v = torch.randn(1, 2, 2, 4), torch.randn(1, 2, 2, 4)  # a new batch size after reset
    assert torch.equal(static.update(k, v)[0], k) and static.pos == 2
    with pytest.raises(ValueError, match="max_len"):
        StaticKVCache(0)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_cached_and_uncached_logits_agree_past_the_context(positional):
    """Every step's logits match (1e-5), also after the window starts sliding; the cached
    path feeds one token per step until the context is full, then whole windows."""
    prompt = torch.randint(0, V, (2, 5), generator=torch.Generator().manual_seed(1))
    new = 2 * BLOCK
    runs = {}
    for use_cache in (True, False):
        rec = Recorder(tiny(positional))
        runs[use_cache] = (generate(rec, prompt, new, temperature=0, use_cache=use_cache), rec)
    (cached, rc), (uncached, ru) = runs[True], runs[False]
    assert torch.equal(cached, uncached) and cached.shape == (2, 5 + new)
    assert len(rc.logits) == len(ru.logits) == new
    for a, b in zip(rc.logits, ru.logits):
        assert_close(a, b, atol=1e-5, rtol=1e-5)
    full = BLOCK - 5  # steps until prompt + new tokens fill the window
    assert rc.fed == [5] + [1] * full + [BLOCK] * (new - full - 1)
    assert ru.fed == [min(n, BLOCK) for n in range(5, 5 + new)]
    # sampling, too: the same seed draws the same tokens on both paths
    a = generate(tiny(positional), prompt, new, seed=3, top_k=10)
    assert torch.equal(a, generate(tiny(positional), prompt, new, seed=3, top_k=10,
                                   use_cache=False))


def test_long_prompt_is_cropped_from_the_left(model):
    prompt = torch.randint(0, V, (40,), generator=torch.Generator().manual_seed(2))
    out = generate(model, prompt, 3, temperature=0)
    assert out.shape == (43,) and torch.equal(out[:40], prompt)  # the whole prompt comes back
    with torch.no_grad():
        first = model(prompt[None, -BLOCK:])[0][0, -1].argmax()
    assert out[40] == first
    assert torch.equal(out[-3:], generate(model, prompt[-BLOCK:], 3, temperature=0)[-3:])


# ---------------------------------------------------------------------------- generate


def test_greedy_is_argmax_and_tiny_temperature_is_greedy(model):
    prompt = torch.tensor([[3, 1, 4, 1, 5]])
    out = generate(model, prompt, 12, temperature=0)
    idx = prompt
    with torch.no_grad():
        for _ in range(12):
            idx = torch.cat([idx, model(idx[:, -BLOCK:])[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, idx)
    for seed in range(3):
        assert torch.equal(generate(model, prompt, 12, temperature=1e-6, seed=seed), out)


def test_seed_gives_the_same_text_and_leaves_the_global_rng_alone(model):
    prompt = torch.tensor([1, 2, 3])
    state = torch.get_rng_state()
    a = generate(model, prompt, 30, seed=7)
    assert torch.equal(a, generate(model, prompt, 30, seed=7))
    assert torch.equal(torch.get_rng_state(), state)
    assert not torch.equal(a, generate(model, prompt, 30, seed=8))
    torch.manual_seed(5)  # seed=None: the global RNG, as torch.manual_seed expects
    b = generate(model, prompt, 30)
    torch.manual_seed(5)
    assert torch.equal(b, generate(model, prompt, 30))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(temperature=st.one_of(st.just(0.0), st.floats(1e-4, 5.0)),
       top_k=st.one_of(st.none(), st.integers(1, 2 * V)),
       top_p=st.one_of(st.none(), st.floats(1e-6, 1.0)),
       penalty=st.one_of(st.none(), st.floats(0.1, 5.0)),
       batch=st.integers(1, 3), prompt_len=st.integers(1, BLOCK + 3),
       use_cache=st.booleans(), seed=st.integers(0, 2**31))
def test_ids_always_in_the_vocabulary(model, temperature, top_k, top_p, penalty, batch,
                                      prompt_len, use_cache, seed):
    prompt = torch.randint(0, V, (batch, prompt_len), generator=torch.Generator().manual_seed(0))
    out = generate(model, prompt, 6, temperature=temperature, top_k=top_k, top_p=top_p,
                   repetition_penalty=penalty, seed=seed, use_cache=use_cache)
    assert out.shape == (batch, prompt_len + 6) and out.dtype == torch.long
    assert 0 <= int(out.min()) and int(out.max()) < V
    probs = next_token_distribution(model, prompt, temperature=temperature, top_k=top_k,
                                    top_p=top_p, repetition_penalty=penalty)
    assert probs.shape == ((V,) if batch == 1 else (batch, V))
    assert_close(probs.sum(-1), torch.ones(probs.shape[:-1]))


def test_batched_prompts_equal_per_row_generation(model):
    prompts = torch.randint(0, V, (3, 6), generator=torch.Generator().manual_seed(4))
    for use_cache in (True, False):
        batched = generate(model, prompts, BLOCK + 4, temperature=0, use_cache=use_cache)
        rows = [generate(model, p, BLOCK + 4, temperature=0, use_cache=use_cache)
                for p in prompts]
        assert torch.equal(batched, torch.stack(rows))


def test_one_dimensional_and_list_prompts(model):
    out = generate(model, [1, 2, 3], 4, temperature=0)
    assert out.shape == (7,) and out[:3].tolist() == [1, 2, 3]
    assert torch.equal(out, generate(model, torch.tensor([[1, 2, 3]]), 4, temperature=0)[0])
    assert torch.equal(generate(model, torch.tensor([1, 2]), 0), torch.tensor([1, 2]))
    assert torch.equal(generate(model, torch.tensor([1, 2], dtype=torch.int32), 2,
                                temperature=0)[:2], torch.tensor([1, 2]))


def test_stream_yields_each_step(model):
    prompt = torch.tensor([5, 6])
    steps = list(stream(model, prompt, 5, seed=1))
    assert len(steps) == 5 and all(t.shape == (1,) and t.dtype == torch.long for t in steps)
    assert [int(t) for t in steps] == generate(model, prompt, 5, seed=1)[2:].tolist()
    batch = list(stream(model, torch.zeros(2, 3, dtype=torch.long), 4))
    assert all(t.shape == (2,) for t in batch)


def test_model_mode_and_grad_mode_are_restored():
    m = tiny(dropout=0.5).train()
    prompt = torch.tensor([[1, 2, 3]])
    out = generate(m, prompt, 8, temperature=0)
    assert m.training  # restored
    assert torch.equal(out, generate(m.eval(), prompt, 8, temperature=0))  # no dropout inside
    m.train()
    it = stream(m, prompt, 8)
    next(it)
    assert torch.is_grad_enabled() and not m.training  # between steps: grad on, model eval
    it.close()
    assert m.training


def test_works_without_kv_cache_or_block_size():
    out = generate(Counter(), torch.tensor([0]), 30, temperature=0)
    assert out.tolist() == [i % V for i in range(31)]  # no context limit, no cache
    bigram = BigramLM(V)
    assert generate(bigram, torch.tensor([[1, 2]]), 5, seed=0).shape == (1, 7)


def test_stop_strings_and_ids():
    c = Counter()
    out = generate(c, [0], 10, temperature=0, stop=["de", "zz"], decode=letters)
    assert letters(out) == "abcde"  # the token completing the stop string is kept
    assert generate(c, [0], 10, temperature=0, stop="c", decode=letters).tolist() == [0, 1, 2]
    assert generate(c, [0], 10, temperature=0, stop=3).tolist() == [0, 1, 2, 3]
    assert generate(c, [0], 10, temperature=0, stop=[9, 3]).tolist() == [0, 1, 2, 3]
    assert len(generate(c, [0], 10, temperature=0, stop="zz", decode=letters)) == 11
    # text in the prompt does not count: only the new text is searched
    assert letters(generate(c, [3, 4], 3, temperature=0, stop="de", decode=letters)) == "defgh"
    # batches: a row that is done is padded until every row is done
    out = generate(c, torch.tensor([[0], [2]]), 10, temperature=0, stop=4, pad_id=9)
    assert out.tolist() == [[0, 1, 2, 3, 4], [2, 3, 4, 9, 9]]
    out = generate(c, torch.tensor([[0], [5]]), 4, temperature=0, stop=["c"], decode=letters)
    assert out.tolist() == [[0, 1, 2, 0, 0], [5, 6, 7, 8, 9]]  # row 1 never stops
    assert [int(t) for t in stream(c, [0], 9, temperature=0, stop=2)] == [1, 2]


def test_repetition_penalty_in_generation():
    class Favourite(nn.Module):  # always prefers token 0, token 1 a close second
        def forward(self, idx, targets=None):
            logits = torch.zeros(*idx.shape, V)
            logits[..., 0], logits[..., 1] = 2.0, 1.9
            return logits, None

    m = Favourite()
    assert generate(m, [0], 4, temperature=0).tolist() == [0, 0, 0, 0, 0]
    # 0 is in the prompt: 2.0 / 2 < 1.9 -> 1; then both seen: 1.0 > 0.95 -> 0 for ever
    assert generate(m, [0], 4, temperature=0, repetition_penalty=2.0).tolist() == [0, 1, 0, 0, 0]
    assert generate(m, [0], 4, temperature=0, repetition_penalty=1.0).tolist() == [0] * 5


def test_next_token_distribution(model):
    prompt = torch.tensor([4, 8, 15])
    with torch.no_grad():
        logits = model(prompt[None])[0][0, -1]
    assert_close(next_token_distribution(model, prompt), torch.softmax(logits, -1))
    assert_close(next_token_distribution(model, prompt, temperature=2.0),
                 torch.softmax(logits / 2, -1))
    greedy = next_token_distribution(model, prompt, temperature=0)
    assert greedy.sum() == 1 and greedy[logits.argmax()] == 1
    assert (next_token_distribution(model, prompt, top_k=3) > 0).sum() == 3


BAD = [
    ({"temperature": -0.1}, "temperature must be a number >= 0"),
    ({"temperature": float("nan")}, "temperature"),
    ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k must be an integer >= 1"),
    ({"top_k": 2.5}, "top_k"),
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, "top_p"),
    ({"repetition_penalty": 0.0}, "repetition_penalty must be a number > 0"),
    ({"repetition_penalty": -1.0}, "repetition_penalty"),
    ({"max_new_tokens": -1}, "max_new_tokens must be an integer >= 0"),
    ({"idx": torch.zeros(1, 0, dtype=torch.long)}, "idx is empty"),
    ({"idx": []}, "idx is empty"),
    ({"idx": torch.zeros(1, 3)}, "integer token ids"),
    ({"idx": torch.zeros(1, 1, 3, dtype=torch.long)}, r"\(T,\) or \(B, T\)"),
    ({"idx": "hello"}, "tensor"),
    ({"stop": ["\n"]}, "need decode"),
    ({"stop": [""], "decode": letters}, "non-empty strings"),
    ({"stop": [-1]}, "token ids >= 0"),
    ({"seed": 1.5}, "seed must be an integer"),
    ({"pad_id": -1}, "pad_id"),
]


@pytest.mark.parametrize("kwargs, match", BAD)
def test_bad_input_is_a_clear_value_error(model, kwargs, match):
    args = {"idx": torch.tensor([[1, 2]]), "max_new_tokens": 3, **kwargs}
    idx, new = args.pop("idx"), args.pop("max_new_tokens")
    for fn in (generate, stream):
        with pytest.raises(ValueError, match=match):
            fn(model, idx, new, **args)  # stream checks when called, before any step
    with pytest.raises(ValueError, match="outside the vocabulary"):
        generate(model, torch.tensor([[V]]), 2)


def test_filters_reject_bad_settings():
    x = torch.zeros(4)
    for fn, value, match in [(apply_temperature, -1.0, "temperature"),
                             (top_k_filter, 0, "top_k"), (top_p_filter, 0.0, "top_p"),
                             (top_p_filter, 1.01, "top_p")]:
        with pytest.raises(ValueError, match=match):
            fn(x, value)
    with pytest.raises(ValueError, match="repetition_penalty"):
        apply_repetition_penalty(x, torch.tensor([1]), 0.0)
    with pytest.raises(ValueError, match="previous_ids"):
        sampling_probs(x, repetition_penalty=1.2)


# ---------------------------------------------------------------------------- playground

TEXT = "to be or not to be, that is the question.\n"


@pytest.fixture(scope="module")
def char_model():
    tok = CharTokenizer(TEXT)
    return tiny(vocab_size=tok.vocab_size, seed=3), tok


def test_playground_step_streams_and_reports_the_next_token(char_model):
    model, tok = char_model
    seen: list[str] = []
    text, top = playground_step(model, tok, "to be", temperature=0.8, top_k=5, top_p=None,
                                max_new_tokens=12, seed=2, on_text=seen.append, n_top=8)
    assert len(seen) == 12 and seen[-1] == text and len(text) == 12
    assert all(seen[i + 1].startswith(seen[i]) for i in range(11))  # growing, token by token
    ids = generate(model, tok.encode("to be"), 12, temperature=0.8, top_k=5, seed=2)
    assert text == tok.decode(ids[5:].tolist())  # the same as generate with the same seed
    assert len(top) == 8 and sum(p > 0 for _, p in top) == 5  # top-5: three bars are zero
    probs = [p for _, p in top]
    assert probs == sorted(probs, reverse=True) and math.isclose(sum(probs), 1, rel_tol=1e-5)
    again, _ = playground_step(model, tok, "to be", 0.8, 5, None, 12, 2)
    assert again == text  # same seed, same text
    _, off = playground_step(model, tok, "to be", 1.0, 0, 1.0, 0)  # 0 / 1.0: filters off
    assert all(p > 0 for _, p in off) and _ == ""
    with pytest.raises(ValueError, match="prompt is empty"):
        playground_step(model, tok, "", max_new_tokens=3)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        playground_step(model, tok, "xyz", max_new_tokens=3)
    with pytest.raises(ValueError, match="temperature"):
        playground_step(model, tok, "to", temperature=-1)


def test_top_tokens_and_chart():
    probs = torch.tensor([0.1, 0.6, 0.1, 0.2])
    top = top_tokens(probs, lambda i: " abc"[i], n=3)
    assert top == [("a", pytest.approx(0.6)), ("c", pytest.approx(0.2)),
                   (" ", pytest.approx(0.1))]
    fig = plot_next_token(top)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["a", "c", "␣"]
    plt.close(fig)
    with pytest.raises(ValueError, match="one"):
        top_tokens(probs[None], str)


def test_playground_widget_builds_and_generates(char_model):
    model, tok = char_model
    w = sampling_playground(model, tok, prompt="to be", max_new_tokens=10, seed=1)
    assert len(w.top) == 10 and w.note == ""
    w.top_k.value = 3
    assert sum(p > 0 for _, p in w.top) == 3  # the chart follows the sliders
    assert w.settings() == {"temperature": 0.8, "top_k": 3, "top_p": None}
    text = w.generate()
    assert len(text) == 10 and w.text == text and text in w.output.value.replace("&#x27;", "'")
    w.keep()
    assert w.prompt.value == "to be" + text and w.text == ""
    w.prompt.value = "zz"  # not in the vocabulary: a message, not an exception
    assert "Cannot show" in w.note and w.top == []
    assert w.generate() == "" and "Cannot generate" in w.output.value
    plt.close("all")


# ---------------------------------------------------------------------------- benchmark


def test_benchmark_smoke(monkeypatch, capsys):
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", ["generate.py", "--smoke"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script edits sys.path
    try:
        runpy.run_path(str(ROOT / "benchmarks" / "generate.py"), run_name="__main__")
    finally:
        torch.set_num_threads(threads)
    result = capsys.readouterr().out.strip().splitlines()[-1]
    assert result.startswith("RESULT ") and "cache_identical=True" in result
    assert "cached_tok_s=" in result and "uncached_tok_s=" in result
    try:
        import transformers  # noqa: F401
    except ImportError:
        return
    assert "hf_identical=True" in result and "vs_hf=" in result
