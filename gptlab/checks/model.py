"""Checkers for lesson 07 (the GPT model): the forward pass, the parameter count, FLOPs per token.

The references are ``gptlab.model.GPT`` itself (for the forward pass and the FLOPs) and
``gptlab.config.param_formula`` (for the count): passing a check means the learner's function
is exactly what the library computes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)
from gptlab.config import GPTConfig, param_formula

__all__ = ["check_count_params", "check_flops_per_token", "check_gpt_forward"]


# ----------------------------------------------------------------------------- 7.1


class GPTParts(nn.Module):
    """A GPT's parts (wte, wpe, h, ln_f, lm_head) without its forward: what ``gpt_forward``
    receives, so the learner's function has to put the parts together itself."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.wte, self.wpe, self.h = model.wte, model.wpe, model.h
        self.ln_f, self.lm_head = model.ln_f, model.lm_head

    def forward(self, *args, **kwargs):
        raise TypeError("gpt_forward should compute the logits from the parts (model.wte, "
                        "model.wpe, model.h, model.ln_f, model.lm_head), not by calling "
                        "model(idx).")

    def __repr__(self) -> str:
        return (f"GPT parts (vocab_size={self.wte.num_embeddings}, block_size="
                f"{self.wpe.num_embeddings}, n_layer={len(self.h)}, "
                f"n_embd={self.wte.embedding_dim})")


def _random_gpt(cfg: GPTConfig, seed: int) -> nn.Module:
    """A GPT whose every parameter is random (norm weights and biases too), in eval mode, so
    a forgotten step (positions, final norm, ...) changes the output."""
    from gptlab.model import GPT

    torch.manual_seed(seed)
    model = GPT(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                p.uniform_(0.5, 1.5)
            elif name.endswith("bias") or name == "wpe.weight":
                p.normal_(0.0, 0.1)
    return model


def _variant(parts: GPTParts, idx: Tensor, positions: bool = True, final_norm: bool = True,
             head: str = "lm_head") -> Tensor:
    """The forward pass with one step changed, to name a learner's mistake."""
    T = idx.shape[1]
    x = parts.wte(idx)
    if positions:
        x = x + parts.wpe.weight[:T]
    for block in parts.h:
        x = block(x)
    if final_norm:
        x = parts.ln_f(x)
    return x @ parts.wte.weight.T if head == "wte" else parts.lm_head(x)


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=1e-4, rtol=1e-4)


_FORWARD_CASES = [  # (config keywords, batch size, sequence length)
    ({"vocab_size": 11, "block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 16}, 2, 5),
    ({"vocab_size": 13, "block_size": 6, "n_layer": 3, "n_head": 1, "n_embd": 8}, 1, 6),
    ({"vocab_size": 7, "block_size": 4, "n_layer": 2, "n_head": 2, "n_embd": 8}, 3, 1),
    ({"vocab_size": 9, "block_size": 10, "n_layer": 2, "n_head": 4, "n_embd": 16,
      "tie_weights": False}, 2, 7),
]


@exercise("7.1", "the GPT forward pass")
def check_gpt_forward(fn):
    """Check ``gpt_forward(model, idx: Tensor) -> Tensor``.

    ``model`` holds a GPT's parts, named as in GPT-2: ``wte`` (token embedding, V x C),
    ``wpe`` (position embedding, block_size x C), ``h`` (the list of blocks), ``ln_f`` (the
    final LayerNorm) and ``lm_head`` (C -> V). For token ids ``idx`` of shape (B, T), with
    T <= block_size, it returns the logits of shape (B, T, V):
    ``lm_head(ln_f(blocks(wte(idx) + wpe(positions 0..T-1))))``. Compared with
    ``gptlab.model.GPT`` on 4 random models (one with an untied lm_head), T from 1 to
    block_size.
    """
    for n, (kw, B, T) in enumerate(_FORWARD_CASES):
        cfg = GPTConfig(**kw)
        model = _random_gpt(cfg, seed=70 + n)
        parts = GPTParts(model).eval()
        g = torch.Generator().manual_seed(n)
        idx = torch.randint(0, cfg.vocab_size, (B, T), generator=g)
        before = idx.clone()
        with torch.no_grad():
            expected, _ = model(idx)
            got = call(fn, parts, idx)
        example = f"idx of shape {(B, T)}, {parts!r}"
        if isinstance(got, tuple):
            fail(f"gpt_forward returned a tuple of {len(got)} values for {example}; return only "
                 "the logits tensor of shape (B, T, vocab_size).")
        expect_type(got, Tensor, "gpt_forward(model, idx)", example)
        expect_true(torch.equal(idx, before), "gpt_forward changed idx in place; leave the "
                                              "token ids as they are.")
        if got.shape == (B, cfg.vocab_size) and T > 1:
            fail(f"gpt_forward returned shape {tuple(got.shape)} for {example}: the logits of "
                 "the last position only. Return the logits of every position, shape "
                 f"(B, T, vocab_size) = {(B, T, cfg.vocab_size)}; generation picks the last "
                 "one later, and training uses all of them.")
        expect_shape(got, (B, T, cfg.vocab_size), "the logits", example)
        got = got.detach().float()
        if _same(got, expected):
            continue
        sums = got.sum(-1)
        if torch.allclose(sums, torch.ones_like(sums), atol=1e-4) and (got >= 0).all():
            fail(f"gpt_forward returned probabilities (each row sums to 1) for {example}. "
                 "Return the raw logits of lm_head: softmax is applied later, by the loss "
                 "(F.cross_entropy) or by the sampling loop.")
        with torch.no_grad():
            hints = [
                (_variant(parts, idx, positions=False),
                 ("the position embeddings are missing: add model.wpe's rows for positions "
                  "0..T-1, (T, C), to the token embeddings before the blocks.")),
                (_variant(parts, idx, final_norm=False),
                 ("the final LayerNorm is missing: apply model.ln_f after the last block and "
                  "before model.lm_head.")),
                (_variant(parts, idx, head="wte"),
                 ("you multiplied by wte.weight.T instead of calling model.lm_head. They are "
                  "the same matrix only when the weights are tied; this model has its own "
                  "lm_head (tie_weights=False).")),
            ]
        for variant, hint in hints:
            if _same(got, variant):
                fail(f"gpt_forward gave different logits for {example}: {hint}")
        expect_close(got, expected, atol=1e-4, rtol=1e-4, what="the logits", example=example)
    return (f"your forward pass gives gptlab.model.GPT's logits on {len(_FORWARD_CASES)} "
            "random models, tied and untied")


# ----------------------------------------------------------------------------- 7.2


_COUNT_CASES = [  # (vocab_size, block_size, n_layer, n_embd)
    (65, 64, 2, 64),  # preset "tiny"
    (65, 256, 6, 384),  # "shakespeare-char"
    (50257, 1024, 12, 768),  # "gpt2": 124,439,808
    (10, 8, 1, 4),
    (1000, 32, 3, 48),
    (50257, 1024, 24, 1024),  # "gpt2-medium"
]


def _count_hints(V: int, T: int, L: int, C: int) -> dict[int, str]:
    """(learner's count - right count) -> what was most likely counted wrong."""
    return {
        V * C: "lm_head was counted as a separate V x C matrix. With tied weights lm_head.weight "
               "*is* wte.weight: count it once.",
        -T * C: "the position embedding wpe (block_size x n_embd) is missing.",
        -2 * C: "the final LayerNorm ln_f (a weight and a bias of n_embd each) is missing.",
        -4 * L * C: "the two LayerNorms inside each block (ln_1, ln_2: weight + bias each) are "
                    "missing.",
        -(2 * L + 1) * 2 * C: "the LayerNorms are missing (ln_1 and ln_2 in every block, and "
                              "ln_f): each has a weight and a bias of n_embd numbers.",
        -9 * L * C: "the biases of the Linear layers are missing: per block c_attn has 3C, "
                    "attn.c_proj C, c_fc 4C and mlp.c_proj C.",
        -(9 * L * C + (2 * L + 1) * C): "the biases are missing (Linear layers and LayerNorms).",
        -L * (2 * C * C + 2 * C): "c_attn is too small: it maps C -> 3C, the queries, keys "
                                  "and values of all heads in one matrix (with a 3C bias).",
        -L * (6 * C * C + 3 * C): "the MLP is too small: GPT-2's hidden layer is 4 * n_embd "
                                  "wide (c_fc: C -> 4C, c_proj: 4C -> C, with biases).",
    }


@exercise("7.2", "parameter count by formula")
def check_count_params(fn):
    """Check ``count_params(vocab_size, block_size, n_layer, n_embd) -> int``.

    The number of parameters of GPT-2's architecture (learned positions, Linear layers and
    LayerNorms with biases, a 4x MLP, lm_head tied to the token embedding), counted once per
    tensor. Compared with ``gptlab.config.param_formula`` on 6 configs, GPT-2 small
    (124,439,808) among them.
    """
    for V, T, L, C in _COUNT_CASES:
        expected = param_formula(GPTConfig(vocab_size=V, block_size=T, n_layer=L, n_head=1,
                                           n_embd=C))
        example = f"vocab_size={V}, block_size={T}, n_layer={L}, n_embd={C}"
        got = call(fn, V, T, L, C)
        if isinstance(got, Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect_type(got, int, "count_params(...)", example)
        if got == expected:
            continue
        hint = _count_hints(V, T, L, C).get(got - expected, "")
        fail(f"count_params({example}) = {got:,}, expected {expected:,} (off by "
             f"{got - expected:+,}). " + (hint or "Add up each part: wte, wpe, per block "
                                          "(ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc, "
                                          "mlp.c_proj, with their biases), and ln_f."))
    return (f"matches gptlab.config.param_formula on {len(_COUNT_CASES)} configs, GPT-2 small's "
            "124,439,808 included")


# ----------------------------------------------------------------------------- 7.3


_FLOP_CASES = [  # (config keywords, T)
    ({"vocab_size": 65, "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64}, 64),
    ({"vocab_size": 65, "block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384}, 256),
    ({"vocab_size": 50257, "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768}, 1024),
    ({"vocab_size": 50257, "block_size": 1024, "n_layer": 12, "n_head": 12, "n_embd": 768}, 1),
    ({"vocab_size": 100, "block_size": 32, "n_layer": 3, "n_head": 4, "n_embd": 32}, 20),
]


@exercise("7.3", "FLOPs per token")
def check_flops_per_token(fn):
    """Check ``flops_per_token(n_params, n_layer, n_embd, T) -> int``.

    The training cost of one token (forward and backward) at context length T: 6 FLOPs per
    parameter, ``6 * n_params``, plus attention's two matrix products with the T earlier
    positions, ``12 * n_layer * n_embd * T``. ``n_params`` is the count without the position
    table (``model.num_params(non_embedding=True)``). Compared with
    ``gptlab.model.GPT.flops_per_token`` on 5 models and context lengths.
    """
    from gptlab.model import GPT

    for kw, T in _FLOP_CASES:
        cfg = GPTConfig(**kw)
        with torch.device("meta"):  # shapes only: nothing is allocated
            model = GPT(cfg)
        N, L, C = model.num_params(non_embedding=True), cfg.n_layer, cfg.n_embd
        expected = model.flops_per_token(T)
        example = f"n_params={N:,}, n_layer={L}, n_embd={C}, T={T}"
        got = call(fn, N, L, C, T)
        if isinstance(got, Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect_type(got, int, "flops_per_token(...)", example)
        if got == expected:
            continue
        hints = {
            6 * N: "only 6 * n_params: the attention term is missing. Each token's query meets "
                   "T keys (q @ k^T) and T values (weights @ v): 2 * 2 * T * n_embd FLOPs per "
                   "layer forward, times 3 with the backward pass.",
            2 * N + 4 * L * C * T: "that is the forward pass only. Training also runs the "
                                   "backward pass, which costs about twice the forward: "
                                   "multiply everything by 3.",
            2 * N: "that is the forward cost of the weights only (2 FLOPs per parameter). "
                   "Training adds the backward pass (x3) and attention's products with the T "
                   "earlier positions.",
            6 * N + 6 * L * C * T: "the attention term is half the right size: per layer, "
                                   "q @ k^T and weights @ v each cost 2 * T * n_embd FLOPs "
                                   "forward (a multiply and an add per pair), so 4 * T * "
                                   "n_embd forward and 12 * T * n_embd with the backward.",
        }
        fail(f"flops_per_token({example}) = {got:,}, expected {expected:,}. "
             + hints.get(got, "It is 6 * n_params + 12 * n_layer * n_embd * T."))
    return f"matches gptlab.model.GPT.flops_per_token on {len(_FLOP_CASES)} models"
