"""gptlab.viz.attention (attention maps of any model, heatmaps) and the attention explorer."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gptlab.attention import CausalSelfAttention
from gptlab.viz.attention import (
    attention_layers,
    attention_maps,
    plot_attention,
    token_labels,
)
from gptlab.widgets.attention_explorer import MEAN, attention_explorer

V, C, H, BLOCK = 11, 16, 4, 24


class Stack(nn.Module):
    """Embeddings + attention layers with a residual: the lesson 05 kind of model."""

    def __init__(self, n_layer=3, dropout=0.0, rotary=False):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.layers = nn.ModuleList(
            CausalSelfAttention(C, H, BLOCK, dropout=dropout, rotary=rotary)
            for _ in range(n_layer))

    def forward(self, idx):
        x = self.wte(idx)
        for layer in self.layers:
            x = x + layer(x)
        return x

    def reference_maps(self, idx):
        """Each layer's weights on its own input, computed by hand."""
        with torch.no_grad():
            x, maps = self.wte(idx), []
            for layer in self.layers:
                y, w = layer(x, return_weights=True)
                maps.append(w[0])
                x = x + y
        return torch.stack(maps)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1 = nn.LayerNorm(C)
        self.attn = CausalSelfAttention(C, H, BLOCK)
        self.mlp = nn.Sequential(nn.Linear(C, 4 * C), nn.GELU(), nn.Linear(4 * C, C))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(x)


class TinyGPT(nn.Module):
    """GPT-2 layout (model.h[i].attn), returning (logits, loss) like gptlab's GPT."""

    def __init__(self, n_layer=2):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(BLOCK, C)
        self.h = nn.ModuleList(Block() for _ in range(n_layer))
        self.lm_head = nn.Linear(C, V)

    def forward(self, idx, targets=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        return self.lm_head(x), None


def check_maps(maps, n_layer, T):
    assert maps.shape == (n_layer, H, T, T)
    assert maps.dtype == torch.float32 and not maps.requires_grad
    assert_close(maps.sum(-1), torch.ones(n_layer, H, T))
    future = ~torch.ones(T, T, dtype=torch.bool).tril()
    assert (maps[..., future] == 0).all()
    assert (maps >= 0).all()


def test_maps_shapes_rows_and_layer_order():
    torch.manual_seed(0)
    model = Stack(n_layer=3)
    idx = torch.tensor([1, 5, 2, 9, 0, 3, 3])
    maps = attention_maps(model, idx)
    check_maps(maps, 3, 7)
    assert_close(maps, model.reference_maps(idx[None]))  # layer i is model.layers[i]
    assert_close(attention_maps(model, idx[None]), maps)  # (1, T) works too
    assert_close(attention_maps(model, idx.tolist()), maps)  # and a list of ints
    assert not torch.allclose(maps[0], maps[1])  # different layers, different maps


def test_maps_of_a_gpt_layout_model():
    torch.manual_seed(1)
    model = TinyGPT(n_layer=2)
    assert attention_layers(model) == [model.h[0].attn, model.h[1].attn]
    idx = torch.randint(0, V, (10,))
    maps = attention_maps(model, idx)
    check_maps(maps, 2, 10)
    # layer 0's map by hand: the first block's attention on its normed input
    with torch.no_grad():
        x = model.wte(idx[None]) + model.wpe(torch.arange(10))
        _, w0 = model.h[0].attn(model.h[0].ln_1(x), return_weights=True)
        _, w1 = model.h[1].attn(model.h[1].ln_1(model.h[0](x)), return_weights=True)
    assert_close(maps[0], w0[0])
    assert_close(maps[1], w1[0])


def test_maps_leave_the_model_as_it_was():
    torch.manual_seed(2)
    model = Stack(n_layer=2, dropout=0.5, rotary=True)
    model.train()
    model.layers[1].eval()  # a mixed state is restored exactly
    idx = torch.randint(0, V, (6,))
    a, b = attention_maps(model, idx), attention_maps(model, idx)
    assert_close(a, b)  # eval mode inside: dropout is off
    check_maps(a, 2, 6)
    assert model.training and model.layers[0].training and not model.layers[1].training
    assert all(not m._forward_pre_hooks for m in model.modules())
    with pytest.raises(ValueError, match="Sequence too long"):
        attention_maps(model, torch.zeros(BLOCK + 1, dtype=torch.long))
    assert all(not m._forward_pre_hooks for m in model.modules())  # removed after an error
    assert model.training and not model.layers[1].training


def test_maps_errors():
    model = Stack(n_layer=1)
    with pytest.raises(ValueError, match=r"one non-empty sequence.*\(2, 5\)"):
        attention_maps(model, torch.zeros(2, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="non-empty"):
        attention_maps(model, torch.zeros(0, dtype=torch.long))
    with pytest.raises(ValueError, match="no gptlab.attention.CausalSelfAttention"):
        attention_maps(nn.Embedding(V, C), torch.zeros(3, dtype=torch.long))
    with pytest.raises(TypeError, match="nn.Module"):
        attention_maps(lambda idx: idx, [1, 2])

    class Unused(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = CausalSelfAttention(C, H, BLOCK)
            self.wte = nn.Embedding(V, C)

        def forward(self, idx):
            return self.wte(idx)

    with pytest.raises(ValueError, match="did not call"):
        attention_maps(Unused(), [1, 2])


def test_token_labels_make_whitespace_visible():
    assert token_labels(["a", " ", "\n", "hi there", ""]) == ["a", "␣", "⏎", "hi␣there", "∅"]


def test_plot_attention():
    torch.manual_seed(4)
    maps = attention_maps(Stack(n_layer=1), [1, 2, 3, 4])
    tokens = ["T", "o", " ", "b"]
    fig = plot_attention(maps[0, 0], tokens, title="layer 0, head 0")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["T", "o", "␣", "b"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["T", "o", "␣", "b"]
    assert ax.get_title() == "layer 0, head 0"
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    image = ax.get_images()[0].get_array()
    assert image.shape == (4, 4)
    plt.close(fig)

    fig2, axes = plt.subplots(1, 2)
    assert plot_attention(maps[0, 1], tokens, ax=axes[1], colorbar=False) is fig2
    assert len(fig2.axes) == 2
    plt.close(fig2)

    with pytest.raises(ValueError, match="3 tokens for a 4 x 4"):
        plot_attention(maps[0, 0], tokens[:3])
    with pytest.raises(ValueError, match="square"):
        plot_attention(maps[0], tokens)


def test_plot_attention_thins_labels_of_long_sequences():
    w = torch.full((100, 100), 0.01).tril()
    fig = plot_attention(w, [str(i % 10) for i in range(100)])
    assert len(fig.axes[0].get_xticklabels()) <= 50
    plt.close(fig)


# ----------------------------------------------------------------------------- the widget

CHARS = "abcdefgh .,"


def encode(text):
    return [CHARS.index(ch) for ch in text]  # ValueError for an unknown character


def decode_token(i):
    return CHARS[i]


def test_explorer_builds_without_a_front_end():
    torch.manual_seed(5)
    model = Stack(n_layer=2)
    w = attention_explorer(model, encode, decode_token, text="abc deh")
    assert w.maps.shape == (2, H, 7, 7)
    assert w.tokens == list("abc deh")
    assert [v for _, v in w.layer.options] == [0, 1]
    assert [v for _, v in w.head.options] == [0, 1, 2, 3, MEAN]
    assert_close(w.selected(), w.maps[0, 0])
    w.layer.value, w.head.value = 1, 2
    assert_close(w.selected(), w.maps[1, 2])
    w.head.value = MEAN
    assert_close(w.selected(), w.maps[1].mean(0))
    w.text.value = "hag"
    assert w.maps.shape == (2, H, 3, 3) and w.tokens == ["h", "a", "g"]
    assert w.layer.value == 1 and w.head.value == MEAN  # the menus keep their choice
    plt.close("all")


def test_explorer_handles_bad_long_and_empty_text():
    model = Stack(n_layer=1)
    w = attention_explorer(model, encode, decode_token, text="a" * 40, max_tokens=100)
    assert w.maps.shape[-1] == BLOCK and "first 24 of 40" in w.note  # cut to block_size
    w.text.value = "xyz"
    assert w.maps is None and w.selected() is None and "Cannot encode" in w.note
    w.text.value = ""
    assert w.maps is None and "Type some text" in w.note
    w2 = attention_explorer(model, encode, decode_token, text="abcdefgh", max_tokens=5)
    assert w2.tokens == list("abcde")
    with pytest.raises(ValueError, match="no CausalSelfAttention"):
        attention_explorer(nn.Embedding(3, 4), encode, decode_token)
    plt.close("all")
