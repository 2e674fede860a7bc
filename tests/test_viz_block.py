"""gptlab.viz.block: per-layer gradient norms, output scales and their figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gptlab.model import GPT, GPTConfig
from gptlab.viz.block import layer_grad_norms, layer_output_rms, plot_per_layer


def test_layer_grad_norms_match_a_hand_computation():
    torch.manual_seed(0)
    layers = nn.ModuleList([nn.Linear(4, 4), nn.Linear(4, 4, bias=False), nn.Linear(4, 4)])
    x = torch.randn(3, 4)
    for layer in layers[:2]:  # the last layer is never used: no gradient
        x = layer(x)
    x.pow(2).sum().backward()
    got = layer_grad_norms(layers)
    want = [math.sqrt(sum(p.grad.pow(2).sum().item() for p in layers[i].parameters()))
            for i in range(2)]
    assert got[:2] == pytest.approx(want, rel=1e-6)
    assert got[2] == 0.0
    assert all(isinstance(v, float) for v in got)


def test_layer_grad_norms_keep_tiny_gradients():
    layer = nn.Linear(2, 2)
    for p in layer.parameters():
        p.grad = torch.full_like(p, 1e-30)  # squares underflow in float32
    got = layer_grad_norms([layer])[0]
    assert got == pytest.approx(1e-30 * math.sqrt(6), rel=1e-5)


def test_layer_output_rms_on_a_gpt_and_hooks_removed():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=3, n_head=2, n_embd=16)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx = torch.randint(0, 11, (2, 8))
    rms = layer_output_rms(model.h, lambda: model(idx))
    # by hand
    with torch.no_grad():
        x = model.wte(idx) + model.wpe(8)
        want = []
        for block in model.h:
            x = block(x)
            want.append(x.pow(2).mean().sqrt().item())
    assert rms == pytest.approx(want, rel=1e-5)
    assert all(len(b._forward_hooks) == 0 for b in model.h)


def test_layer_output_rms_and_grad_norms_from_one_forward_backward():
    torch.manual_seed(0)
    stack = nn.Sequential(*[nn.Linear(6, 6) for _ in range(4)])
    x = torch.randn(5, 6)

    def forward_backward():
        stack(x).pow(2).mean().backward()

    rms = layer_output_rms(stack, forward_backward)
    grads = layer_grad_norms(stack)
    with torch.no_grad():
        h, want = x, []
        for layer in stack:
            h = layer(h)
            want.append(h.pow(2).mean().sqrt().item())
    assert rms == pytest.approx(want, rel=1e-5)
    assert all(g > 0 for g in grads)  # the backward pass inside run() reached every layer


def test_layer_output_rms_tuple_outputs_and_errors():
    class Pair(nn.Module):
        def forward(self, x):
            return 2 * x, "extra"

    layers = [Pair(), Pair()]
    x = torch.ones(3)
    assert layer_output_rms(layers, lambda: layers[1](layers[0](x)[0])) == pytest.approx([2, 4])
    with pytest.raises(ValueError, match=r"did not call layers \[1\]"):
        layer_output_rms(layers, lambda: layers[0](x))
    with pytest.raises(RuntimeError, match="boom"):
        layer_output_rms(layers, lambda: (_ for _ in ()).throw(RuntimeError("boom")))
    assert all(len(m._forward_hooks) == 0 for m in layers)


def test_plot_per_layer_lines_and_undrawable_values():
    fig = plot_per_layer({"a": [1.0, 0.1, 0.01], "b": [0.0, 1e3, float("inf")]},
                         ylabel="gradient norm", title="t")
    ax = fig.axes[0]
    lines = ax.get_lines()
    assert [len(line.get_xdata()) for line in lines] == [3, 1]
    assert list(lines[1].get_xdata()) == [1]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "gradient norm"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b (2 not drawn: 0 or inf)"]
    plt.close(fig)


def test_plot_per_layer_linear_axis_into_given_ax():
    fig, (a1, a2) = plt.subplots(1, 2)
    out = plot_per_layer({"x": [-1.0, 0.0, 2.0]}, ylabel="rms", log=False, ax=a2)
    assert out is fig and a2.get_yscale() == "linear"
    assert len(a2.get_lines()[0].get_xdata()) == 3 and not a1.get_lines()
    plt.close(fig)
