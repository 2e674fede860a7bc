"""Tests for gptlab.positional: learned, sinusoidal and rotary position encodings."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from gptlab.positional import (
    LearnedPositionalEmbedding,
    Rotary,
    SinusoidalPositionalEncoding,
    apply_rotary,
    rotary_tables,
    rotate_half,
    sinusoidal_table,
)

# ---------------------------------------------------------------------------- learned


def test_learned_shapes_and_offsets():
    torch.manual_seed(0)
    wpe = LearnedPositionalEmbedding(block_size=16, n_embd=8)
    assert isinstance(wpe, torch.nn.Embedding)
    assert wpe(5).shape == (5, 8)
    assert_close(wpe(5), wpe.weight[:5])
    assert_close(wpe(3, start_pos=4), wpe.weight[4:7])
    pos = torch.tensor([[0, 3], [15, 2]])
    assert wpe(pos).shape == (2, 2, 8)
    assert_close(wpe(pos)[1, 0], wpe.weight[15])
    assert wpe(16).shape == (16, 8)  # the whole table is fine
    assert list(wpe.state_dict()) == ["weight"]  # GPT-2's wpe.weight loads straight in
    assert wpe.weight.requires_grad
    assert wpe.weight.std().item() < 0.1  # GPT-2 init N(0, 0.02), not nn.Embedding's N(0, 1)


def test_learned_gets_gradients():
    wpe = LearnedPositionalEmbedding(8, 4)
    wpe(3, start_pos=2).sum().backward()
    assert wpe.weight.grad is not None
    used = wpe.weight.grad.abs().sum(-1) > 0
    assert used.tolist() == [False, False, True, True, True, False, False, False]


@pytest.mark.parametrize("T, start_pos", [(17, 0), (10, 7), (1, 16)])
def test_learned_too_long_names_both_lengths(T, start_pos):
    wpe = LearnedPositionalEmbedding(16, 8)
    with pytest.raises(ValueError, match="block_size = 16") as e:
        wpe(T, start_pos=start_pos)
    msg = str(e.value)
    assert f"T = {T}" in msg and "crop" in msg and str(T + start_pos) in msg


def test_learned_bad_position_tensor():
    wpe = LearnedPositionalEmbedding(16, 8)
    with pytest.raises(ValueError, match=r"\[0, 15\].*block_size"):
        wpe(torch.tensor([0, 16]))
    with pytest.raises(ValueError, match="start_pos"):
        wpe(2, start_pos=-1)


# ---------------------------------------------------------------------------- sinusoidal


def test_sinusoidal_table_matches_closed_form():
    T, C = 50, 16
    table = sinusoidal_table(T, C)
    assert table.shape == (T, C) and table.dtype == torch.float32
    for pos in (0, 1, 7, 49):
        for i in (0, 1, 3, 7):
            angle = pos / 10000 ** (2 * i / C)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    # position 0: sin(0) = 0 on even dims, cos(0) = 1 on odd dims
    assert_close(table[0, 0::2], torch.zeros(C // 2))
    assert_close(table[0, 1::2], torch.ones(C // 2))


def test_sinusoidal_other_base():
    table = sinusoidal_table(4, 4, base=100.0)
    assert table[3, 2].item() == pytest.approx(math.sin(3 / 100 ** (2 / 4)), abs=1e-6)


def test_sinusoidal_module_buffer_not_in_state_dict():
    pe = SinusoidalPositionalEncoding(32, 8)
    assert "pe" in dict(pe.named_buffers())
    assert pe.state_dict() == {}
    assert list(pe.parameters()) == []
    assert_close(pe(10), sinusoidal_table(32, 8)[:10])
    assert_close(pe(4, start_pos=5), sinusoidal_table(32, 8)[5:9])
    assert_close(pe(torch.tensor([3, 1])), sinusoidal_table(32, 8)[[3, 1]])


def test_sinusoidal_too_long():
    pe = SinusoidalPositionalEncoding(32, 8)
    with pytest.raises(ValueError, match=r"T = 33.*block_size = 32"):
        pe(33)


def test_sinusoidal_odd_n_embd():
    with pytest.raises(ValueError, match="even n_embd.*n_embd = 7"):
        sinusoidal_table(10, 7)
    with pytest.raises(ValueError, match="n_embd = 7"):
        SinusoidalPositionalEncoding(10, 7)


# ---------------------------------------------------------------------------- rotary


def test_rotary_tables_layout():
    cos, sin = rotary_tables(head_dim=8, block_size=5)
    assert cos.shape == sin.shape == (5, 8)
    # split halves: dim j and j + D/2 share frequency base ** (-2j / D)
    assert_close(cos[:, :4], cos[:, 4:])
    for p in (0, 1, 4):
        for j in range(4):
            angle = p * 10000 ** (-2 * j / 8)
            assert cos[p, j].item() == pytest.approx(math.cos(angle), abs=1e-6)
            assert sin[p, j].item() == pytest.approx(math.sin(angle), abs=1e-6)


def test_rotate_half_is_a_quarter_turn():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert rotate_half(x).tolist() == [-3.0, -4.0, 1.0, 2.0]
    assert_close(rotate_half(rotate_half(x)), -x)


def test_rotary_pair_is_a_2d_rotation():
    # with D = 2 there is one pair turning at frequency 1: position p turns by p radians
    rope = Rotary(head_dim=2, block_size=4)
    x = torch.tensor([[1.0, 0.0]] * 4)  # (T, D)
    out = rope(x)
    expected = torch.tensor([[math.cos(p), math.sin(p)] for p in range(4)])
    assert_close(out, expected)


def test_rotary_norm_preserved_and_position_zero_is_identity():
    torch.manual_seed(0)
    rope = Rotary(head_dim=16, block_size=32)
    x = torch.randn(2, 3, 32, 16)
    out = rope(x)
    assert out.shape == x.shape
    assert_close(out.norm(dim=-1), x.norm(dim=-1), atol=1e-5, rtol=1e-5)
    assert_close(out[:, :, 0], x[:, :, 0])  # angle 0 at position 0


@pytest.mark.parametrize("m, n, s", [(0, 0, 5), (3, 1, 7), (2, 9, 20), (0, 30, 33)])
def test_rotary_relative_position(m, n, s):
    """q . k after rotation depends only on n - m: shifting both by s changes nothing."""
    torch.manual_seed(m * 100 + n)
    D = 32
    rope = Rotary(head_dim=D, block_size=64)
    q, k = torch.randn(1, 1, 1, D), torch.randn(1, 1, 1, D)

    def score(pq: int, pk: int) -> torch.Tensor:
        return (rope(q, start_pos=pq) * rope(k, start_pos=pk)).sum()

    assert_close(score(m, n), score(m + s, n + s), atol=1e-5, rtol=1e-5)


def test_rotary_start_pos_equals_slice_of_longer_sequence():
    torch.manual_seed(0)
    rope = Rotary(head_dim=8, block_size=20)
    x = torch.randn(2, 4, 12, 8)  # (B, H, T, D)
    full = rope(x)
    for s in (1, 5, 11):
        assert_close(rope(x[:, :, s:], start_pos=s), full[:, :, s:])
        cos, sin = rope.cos_sin(12 - s, start_pos=s)
        assert_close(apply_rotary(x[:, :, s:], cos, sin), full[:, :, s:])


def test_rotary_buffers_not_in_state_dict_and_keep_dtype():
    rope = Rotary(8, 16)
    assert rope.state_dict() == {}
    assert list(rope.parameters()) == []
    x = torch.randn(1, 1, 4, 8, dtype=torch.float64)
    assert rope(x).dtype == torch.float64
    assert "cos" in dict(rope.named_buffers())


def test_rotary_module_apply_still_works():
    # nn.Module.apply (used by model init) must not be shadowed
    seen = []
    Rotary(8, 16).apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Rotary"]


def test_rotary_odd_head_dim():
    with pytest.raises(ValueError, match=r"even head size.*head_dim = 7.*n_embd // n_head"):
        Rotary(head_dim=7, block_size=16)


def test_rotary_too_long():
    rope = Rotary(8, 16)
    with pytest.raises(ValueError, match=r"T = 4 tokens starting at position start_pos = 14"):
        rope(torch.randn(1, 1, 4, 8), start_pos=14)
    with pytest.raises(ValueError, match=r"T = 17.*block_size = 16.*crop"):
        rope(torch.randn(1, 1, 17, 8))


def test_rotary_wrong_head_dim_input():
    with pytest.raises(ValueError, match="head_dim = 8.*is 6"):
        Rotary(8, 16)(torch.randn(1, 1, 4, 6))
