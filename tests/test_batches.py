"""Tests for gptlab.batches: random windows, fixed evaluation batches, the DDP slicing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptlab.batches import as_token_tensor, eval_batches, get_batch, sample_step

DATA = torch.arange(100)  # token i at position i: a window's start tells where it came from


def test_get_batch_shapes_and_shift():
    x, y = get_batch(DATA, batch_size=8, block_size=10, device="cpu",
                     generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 10) and x.dtype == y.dtype == torch.long
    assert torch.equal(y, x + 1)  # targets are the inputs shifted by one token
    assert torch.equal(x - x[:, :1], torch.arange(10).expand(8, 10))  # contiguous windows
    assert int(x[:, 0].min()) >= 0 and int(y[:, -1].max()) <= 99


def test_get_batch_covers_every_start_and_repeats_with_a_generator():
    starts = set()
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        x, _ = get_batch(torch.arange(12), 16, 4, generator=g)
        starts |= set(x[:, 0].tolist())
    assert starts == set(range(8))  # every window start 0 .. len - block_size - 1
    a = get_batch(DATA, 4, 8, generator=torch.Generator().manual_seed(3))
    b = get_batch(DATA, 4, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_shortest_data_and_other_inputs():
    x, y = get_batch(torch.arange(5), 3, 4)  # exactly block_size + 1 tokens: one window
    assert torch.equal(x, torch.arange(4).expand(3, 4)) and torch.equal(y, x + 1)
    x, _ = get_batch(np.arange(50, dtype=np.uint16), 2, 4)  # numpy, narrow dtype
    assert x.dtype == torch.long
    assert as_token_tensor(torch.arange(5, dtype=torch.int32)).dtype == torch.int32
    assert as_token_tensor([1, 2, 3]).dtype == torch.long


@pytest.mark.parametrize("data, kw, match", [
    (torch.arange(10), {"block_size": 10}, r"holds 10 tokens.*block_size \+ 1 = 11.*at most 9"),
    (torch.arange(10), {"batch_size": 0}, "batch_size must be a positive integer"),
    (torch.arange(10), {"block_size": -1}, "block_size must be a positive integer"),
    (torch.arange(10), {"batch_size": 2.0}, "batch_size must be a positive integer"),
    (torch.zeros(0, dtype=torch.long), {}, "empty"),
    (torch.rand(20), {}, "integer token ids"),
    (torch.arange(20).view(4, 5), {}, "1-D"),
    (None, {}, "missing"),
])
def test_clear_errors(data, kw, match):
    args = {"batch_size": 2, "block_size": 4, **kw}
    with pytest.raises(ValueError, match=match):
        get_batch(data, **args)


def test_eval_batches_fixed_and_independent_of_global_rng():
    torch.manual_seed(0)
    a = eval_batches(DATA, 3, 4, 8, seed=5)
    state = torch.get_rng_state()
    torch.manual_seed(123)  # the global state does not matter ...
    b = eval_batches(DATA, 3, 4, 8, seed=5)
    assert len(a) == 3 and all(torch.equal(p[0], q[0]) for p, q in zip(a, b))
    torch.manual_seed(0)
    eval_batches(DATA, 3, 4, 8, seed=5)
    assert torch.equal(torch.get_rng_state(), state)  # ... and is not touched
    c = eval_batches(DATA, 3, 4, 8, seed=6)
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(a, c))
    with pytest.raises(ValueError, match="positive integer"):
        eval_batches(DATA, 0, 4, 8)


def test_sample_step_splits_one_global_batch():
    """world_size x grad_accum micro-batches, same global batch however they are split."""
    def micro(grad_accum, world_size, rank):
        g = torch.Generator().manual_seed(7)
        return [x for x, _ in sample_step(DATA, 4, 8, g, grad_accum=grad_accum,
                                          world_size=world_size, rank=rank)]

    single = micro(4, 1, 0)  # one process accumulating 4 micro-batches
    two_ranks = micro(2, 2, 0) + micro(2, 2, 1)  # 2 processes x 2
    four_ranks = [m for r in range(4) for m in micro(1, 4, r)]  # 4 processes x 1
    assert len(single) == 4
    for a, b, c in zip(single, two_ranks, four_ranks):
        assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(single[0], single[1])  # each micro-batch is different
    # with one micro-batch it is get_batch's draw
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(sample_step(DATA, 4, 8, g1)[0][0], get_batch(DATA, 4, 8, generator=g2)[0])
