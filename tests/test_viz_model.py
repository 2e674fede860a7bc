"""gptlab.viz.model: parameter shares, the breakdown figure, readable counts and durations."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from gptlab.config import PRESETS, GPTConfig, param_breakdown
from gptlab.viz.model import (
    PART_COLORS,
    format_count,
    format_seconds,
    param_shares,
    plot_param_breakdown,
)


@pytest.mark.parametrize("n, text", [
    (0, "0"), (950, "950"), (1000, "1.0K"), (108_352, "108.4K"), (124_439_808, "124.4M"),
    (1_557_611_200, "1.56B"), (35e9, "35.0B"), (2.5e12, "2.50T"), (2.1e18, "2.1e+18"),
    (0.944, "0.944"), (-2000, "-2.0K"), (float("inf"), "inf"),
])
def test_format_count(n, text):
    assert format_count(n) == text


@pytest.mark.parametrize("s, text", [
    (0.004, "4.0 ms"), (42, "42.0 s"), (90, "1.5 min"), (5400, "1.5 h"), (3e6, "34.7 days"),
    (1e9, "31.7 years"), (float("nan"), "nan"),
])
def test_format_seconds(s, text):
    assert format_seconds(s) == text


def test_param_shares_sum_to_one_and_follow_the_breakdown():
    for name in PRESETS:
        cfg = GPTConfig.preset(name)
        shares = param_shares(cfg)
        assert list(shares) == list(param_breakdown(cfg)) == list(PART_COLORS)
        assert math.isclose(sum(shares.values()), 1.0)
    gpt2 = param_shares(GPTConfig.preset("gpt2"))
    assert math.isclose(gpt2["wte"], 50257 * 768 / 124_439_808)
    assert gpt2["lm_head"] == 0  # tied
    assert param_shares(GPTConfig.preset("gpt2", tie_weights=False))["lm_head"] > 0.2


def test_plot_param_breakdown_draws_one_full_bar_per_config():
    configs = {"tiny": GPTConfig.preset("tiny"), "gpt2": GPTConfig.preset("gpt2"),
               "untied": GPTConfig.preset("tiny", tie_weights=False, positional="rope")}
    fig = plot_param_breakdown(configs)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[0].startswith("tiny  (108.4K)") and labels[1].startswith("gpt2  (124.4M)")
    widths: dict[float, float] = {}
    for patch in ax.patches:  # the segments of each bar add up to 100%
        y = round(patch.get_y() + patch.get_height() / 2, 3)
        widths[y] = widths.get(y, 0.0) + patch.get_width()
    assert len(widths) == 3 and all(math.isclose(w, 100.0) for w in widths.values())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "wte" in legend and "lm_head" in legend  # an untied model shows its head
    plt.close(fig)

    fig, ax = plt.subplots()
    assert plot_param_breakdown({"tiny": GPTConfig.preset("tiny")}, ax=ax) is fig
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "lm_head" not in legend  # nothing to draw for a tied head
    plt.close(fig)


def test_plot_param_breakdown_needs_configs():
    with pytest.raises(ValueError, match="at least one config"):
        plot_param_breakdown({})
