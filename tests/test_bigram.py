"""gptlab.bigram: counting and learning the bigram language model."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from gptlab.bigram import BigramLM, bigram_counts, bigram_probs, nll


def _loop_counts(ids: list[int], V: int) -> torch.Tensor:
    counts = torch.zeros(V, V, dtype=torch.long)
    for a, b in itertools.pairwise(ids):
        counts[a, b] += 1
    return counts


def test_bigram_counts_match_a_loop():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 7, (500,), generator=g)
    counts = bigram_counts(ids, 7)
    assert counts.dtype == torch.long and counts.shape == (7, 7)
    assert torch.equal(counts, _loop_counts(ids.tolist(), 7))
    assert counts.sum() == len(ids) - 1
    assert bigram_counts(torch.tensor([0, 1, 0, 1]), 2).tolist() == [[0, 2], [1, 0]]
    assert bigram_counts(torch.tensor([3]), 5).sum() == 0  # one token: no pairs
    assert torch.equal(bigram_counts([2, 0, 2], 3), _loop_counts([2, 0, 2], 3))  # a list works


def test_bigram_counts_bad_input():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        bigram_counts(torch.tensor([0, 5]), 5)
    with pytest.raises(ValueError, match="1-D tensor of integer"):
        bigram_counts(torch.zeros(2, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="1-D tensor of integer"):
        bigram_counts(torch.tensor([0.0, 1.0]), 5)


def test_bigram_probs_rows_and_smoothing():
    ids = torch.tensor([0, 1, 0, 1, 2])
    p0 = bigram_probs(ids, 4, smoothing=0.0)
    assert p0.dtype == torch.float32
    torch.testing.assert_close(p0[0], torch.tensor([0.0, 1.0, 0.0, 0.0]))
    torch.testing.assert_close(p0[1], torch.tensor([0.5, 0.0, 0.5, 0.0]))
    torch.testing.assert_close(p0[3], torch.full((4,), 0.25))  # never followed: uniform
    p1 = bigram_probs(ids, 4)  # add-one
    torch.testing.assert_close(p1[0], torch.tensor([1.0, 3.0, 1.0, 1.0]) / 6)
    torch.testing.assert_close(p1.sum(dim=1), torch.ones(4))
    with pytest.raises(ValueError, match="smoothing"):
        bigram_probs(ids, 4, smoothing=-1.0)


def test_nll():
    V = 5
    ids = torch.tensor([0, 3, 1, 4, 4, 2])
    torch.testing.assert_close(nll(torch.full((V, V), 1 / V), ids), torch.tensor(math.log(V)))
    p = bigram_probs(ids, V, smoothing=0.5)
    expected = -sum(math.log(p[a, b]) for a, b in zip(ids.tolist(), ids.tolist()[1:])) / 5
    assert nll(p, ids).item() == pytest.approx(expected, rel=1e-6)
    # The MLE table scores its own data best: it is never beaten by a smoothed one.
    assert nll(bigram_probs(ids, V, 0.0), ids) < nll(bigram_probs(ids, V, 1.0), ids)
    assert nll(bigram_probs(ids, V, 0.0), torch.tensor([0, 0])).item() == math.inf
    with pytest.raises(ValueError, match="at least 2"):
        nll(p, torch.tensor([1]))
    with pytest.raises(ValueError, match="square"):
        nll(torch.ones(2, 3), ids)


@pytest.mark.parametrize("n_embd", [None, 16])
def test_initial_loss_is_about_ln_v(n_embd):
    torch.manual_seed(0)
    V = 65
    model = BigramLM(V, n_embd=n_embd)
    idx = torch.randint(0, V, (8, 32))
    targets = torch.randint(0, V, (8, 32))
    logits, loss = model(idx, targets)
    assert logits.shape == (8, 32, V)
    assert abs(loss.item() - math.log(V)) < 0.1
    logits2, none = model(idx)
    assert none is None and torch.equal(logits, logits2)


def test_parameters_and_names():
    assert [n for n, _ in BigramLM(10).named_parameters()] == ["wte.weight"]
    m = BigramLM(10, n_embd=4)
    assert sorted(n for n, _ in m.named_parameters()) == ["lm_head.bias", "lm_head.weight",
                                                          "wte.weight"]
    assert m.wte.weight.shape == (10, 4) and m.lm_head.weight.shape == (10, 4)
    assert sum(p.numel() for p in m.parameters()) == 10 * 4 + 4 * 10 + 10


def test_logits_table_is_the_model():
    torch.manual_seed(1)
    m = BigramLM(6, n_embd=3)
    table = m.logits_table()
    assert table.shape == (6, 6)
    idx = torch.tensor([[2, 5, 0]])
    torch.testing.assert_close(m(idx)[0][0], table[idx[0]])


def test_bad_input():
    m = BigramLM(5)
    with pytest.raises(ValueError, match="batch dimension"):
        m(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="integer token ids"):
        m(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="shape of idx"):
        m(torch.zeros(1, 2, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long))
    with pytest.raises(ValueError, match="vocab_size"):
        BigramLM(0)
    with pytest.raises(ValueError, match="n_embd"):
        BigramLM(5, n_embd=0)
    with pytest.raises(ValueError, match="temperature"):
        m.generate(torch.zeros(1, 1, dtype=torch.long), 3, temperature=0.0)


def _train(model, data, steps, lr, batch=16, block=16):
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        ix = torch.randint(0, len(data) - block, (batch,), generator=g)
        offsets = ix[:, None] + torch.arange(block)
        _, loss = model(data[offsets], data[offsets + 1])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


@pytest.mark.parametrize("n_embd", [None, 8])
def test_learns_a_deterministic_sequence(n_embd):
    torch.manual_seed(0)
    V = 10
    order = torch.randperm(V)  # a fixed cycle: each token has exactly one successor
    data = order.repeat(50)
    model = BigramLM(V, n_embd=n_embd)
    assert _train(model, data, steps=80, lr=0.2) < 0.05
    start = data[:1][None]  # (1, 1)
    out = model.generate(start, max_new_tokens=2 * V)
    assert out.shape == (1, 2 * V + 1)
    assert torch.equal(out[0], data[: 2 * V + 1])


def test_gradient_descent_finds_the_counting_answer():
    """The count table (MLE) minimises the training loss; a trained table gets close to it."""
    g = torch.Generator().manual_seed(0)
    V = 6
    transition = torch.softmax(2 * torch.randn(V, V, generator=g), dim=-1)
    ids = [0]
    for _ in range(4000):
        ids.append(int(torch.multinomial(transition[ids[-1]], 1, generator=g)))
    data = torch.tensor(ids)
    counts = bigram_counts(data, V).float()
    mle = nll(bigram_probs(data, V, smoothing=0.0), data).item()
    torch.manual_seed(0)
    model = BigramLM(V)
    _train(model, data, steps=300, lr=0.05, batch=32, block=32)
    with torch.no_grad():
        log_probs = F.log_softmax(model.logits_table(), dim=-1)
        learned = (-(counts * log_probs).sum() / counts.sum()).item()
    assert mle - 1e-4 <= learned < mle + 0.03


def test_generate_is_reproducible_with_a_generator():
    torch.manual_seed(0)
    m = BigramLM(7, n_embd=3)
    start = torch.zeros(2, 1, dtype=torch.long)
    a = m.generate(start, 20, generator=torch.Generator().manual_seed(5))
    b = m.generate(start, 20, generator=torch.Generator().manual_seed(5))
    assert a.shape == (2, 21) and torch.equal(a, b)
    assert int(a.min()) >= 0 and int(a.max()) < 7
