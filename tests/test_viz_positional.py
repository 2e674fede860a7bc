"""gptlab.viz.positional: position-table heatmap and similarity against offset."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch.testing import assert_close

from gptlab.positional import sinusoidal_table
from gptlab.viz.positional import (
    plot_position_table,
    plot_similarity_by_offset,
    similarity_by_offset,
)


def test_similarity_by_offset_matches_dot_products():
    torch.manual_seed(0)
    table = torch.randn(20, 6)
    sims = similarity_by_offset(table, starts=[5, 10], max_offset=3)
    assert sims.shape == (2, 7)
    for row, p in enumerate((5, 10)):
        for col, k in enumerate(range(-3, 4)):
            assert_close(sims[row, col], table[p] @ table[p + k])
    assert_close(sims[:, 3], (table[[5, 10]] ** 2).sum(-1))  # offset 0: squared norms


def test_sinusoidal_similarity_depends_only_on_offset():
    C = 32
    table = sinusoidal_table(400, C)
    sims = similarity_by_offset(table, starts=(50, 150, 300), max_offset=40)
    assert_close(sims[0], sims[1], atol=1e-4, rtol=1e-4)
    assert_close(sims[0], sims[2], atol=1e-4, rtol=1e-4)
    k = torch.arange(-40, 41, dtype=torch.float64)
    omega = 10000.0 ** (-torch.arange(0, C, 2, dtype=torch.float64) / C)
    expected = torch.cos(k[:, None] * omega).sum(-1).float()  # sum_i cos(k w_i)
    assert_close(sims[0], expected, atol=1e-4, rtol=1e-4)
    assert math.isclose(float(sims[0, 40]), C / 2, rel_tol=1e-5)  # the peak, at k = 0
    assert float(sims[0].max()) == pytest.approx(C / 2, rel=1e-5)


def test_similarity_by_offset_rejects_out_of_range():
    table = torch.zeros(10, 4)
    with pytest.raises(ValueError, match=r"too close to an edge.*max_offset = 3"):
        similarity_by_offset(table, starts=[2], max_offset=3)
    with pytest.raises(ValueError, match="too close to an edge"):
        similarity_by_offset(table, starts=[7], max_offset=3)
    with pytest.raises(ValueError, match="starts is empty"):
        similarity_by_offset(table, starts=[], max_offset=1)
    with pytest.raises(ValueError, match=r"\(T, C\) tensor"):
        similarity_by_offset(torch.zeros(10), starts=[5], max_offset=1)
    with pytest.raises(ValueError, match="max_offset must be >= 0"):
        similarity_by_offset(table, starts=[5], max_offset=-1)


def test_plots_return_figures():
    table = sinusoidal_table(64, 16)
    fig = plot_position_table(table, title="pe")
    assert fig.axes[0].get_title() == "pe"
    assert fig.axes[0].images[0].get_array().shape == (64, 16)
    plt.close(fig)
    fig, (a, b) = plt.subplots(1, 2)
    assert plot_position_table(torch.nn.Parameter(torch.randn(8, 4)), ax=a) is fig  # no grad
    assert plot_similarity_by_offset(table, starts=(20, 40), max_offset=10, ax=b) is fig
    assert len(b.lines) == 2 and b.get_legend() is not None
    plt.close(fig)
    fig = plot_similarity_by_offset(table, starts=(30,), max_offset=5)
    assert list(fig.axes[0].lines[0].get_xdata()) == list(range(-5, 6))
    plt.close(fig)
