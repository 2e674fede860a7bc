"""Multi-head causal self-attention, the plain way and the fused way.

Lesson 05 builds this file up from small pure functions:

    causal_mask(T)                 which key each query may look at (lower triangle)
    attention_weights(q, k)        softmax(q @ k^T / sqrt(D)) with the future masked out
    naive_attention(q, k, v)       attention_weights(q, k) @ v, every step explicit
    fused_attention(q, k, v)       the same through torch's scaled_dot_product_attention

and then ``CausalSelfAttention``, the layer the GPT model stacks. Its weights use GPT-2's
names and layout (``c_attn`` projects to [q | k | v], ``c_proj`` projects back), so GPT-2
checkpoints load into it.

Shapes, as in nanoGPT: B batch, T sequence length (of the queries), S number of keys
(S = T without a cache), C embedding size (n_embd), H heads (n_head), D head size (C // H).

KV cache: ``forward(x, kv_cache=cache)`` runs only the new tokens. The cache is any object
with ``pos`` (how many tokens it holds) and ``update(k, v) -> (k_all, v_all)``; ``KVCache``
below is the simple one.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from gptlab.positional import Rotary, check_positions

__all__ = [
    "IMPLS",
    "CausalSelfAttention",
    "KVCache",
    "KVCacheLike",
    "attention_weights",
    "causal_mask",
    "fused_attention",
    "naive_attention",
]

IMPLS = ("naive", "sdpa")


# ----------------------------------------------------------------------------------------
# Pure functions


def causal_mask(
    T: int, device: torch.device | str | None = None, *, n_keys: int | None = None
) -> Tensor:
    """Boolean (T, n_keys) mask, True where a query may attend to a key.

    Without ``n_keys`` it is the (T, T) lower triangle: token t sees tokens 0 .. t. With a
    KV cache the T queries are the *last* T of n_keys positions, so query i sees keys
    0 .. i + (n_keys - T). True means "keep", as in scaled_dot_product_attention's attn_mask.
    """
    S = T if n_keys is None else n_keys
    if S < T:
        raise ValueError(f"n_keys ({S}) must be >= the number of queries T ({T}).")
    return torch.ones(T, S, dtype=torch.bool, device=device).tril(diagonal=S - T)  # (T, S)


def attention_weights(q: Tensor, k: Tensor, causal: bool = True) -> Tensor:
    """softmax(q @ k^T / sqrt(D)), with future keys masked when ``causal``.

    q (..., T, D), k (..., S, D) -> weights (..., T, S); each row sums to 1.
    """
    D = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # (..., T, S)
    if causal:
        mask = causal_mask(q.shape[-2], q.device, n_keys=k.shape[-2])  # (T, S)
        scores = scores.masked_fill(~mask, float("-inf"))
    return F.softmax(scores, dim=-1)  # (..., T, S)


def naive_attention(q: Tensor, k: Tensor, v: Tensor, causal: bool = True) -> Tensor:
    """Attention spelled out: weights @ v.  q (..., T, D), k, v (..., S, D) -> (..., T, D)."""
    return attention_weights(q, k, causal) @ v


def fused_attention(
    q: Tensor, k: Tensor, v: Tensor, causal: bool = True, dropout_p: float = 0.0
) -> Tensor:
    """The same as ``naive_attention``, through F.scaled_dot_product_attention.

    The fused kernel never builds the (T, S) weight matrix in memory (flash / memory-efficient
    attention on GPU). Note that its ``is_causal=True`` aligns the mask to the *top-left*
    corner, which is only right when T == S; with a KV cache (T < S) we pass our own mask.
    """
    T, S = q.shape[-2], k.shape[-2]
    if not causal or T == 1:  # a single newest query may see every key: no mask needed
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)
    if T == S:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
    mask = causal_mask(T, q.device, n_keys=S)  # (T, S), bottom-right aligned
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)


# ----------------------------------------------------------------------------------------
# KV cache


class KVCacheLike(Protocol):
    """What ``CausalSelfAttention.forward`` needs from a KV cache (one per layer).

    ``pos``: how many tokens the cache already holds, i.e. the position of the first new
    token. ``update(k, v)``: store the new keys/values (B, H, T, D) and return all of them,
    (B, H, pos + T, D), oldest first.
    """

    @property
    def pos(self) -> int: ...

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...


class KVCache:
    """The simplest KV cache: keep the keys and values and concatenate new ones on.

    cache = KVCache()
    y = attn(prompt, kv_cache=cache)      # prefill: all prompt tokens at once
    y = attn(next_token, kv_cache=cache)  # then one token at a time
    """

    def __init__(self) -> None:
        self.k: Tensor | None = None  # (B, H, pos, D)
        self.v: Tensor | None = None

    @property
    def pos(self) -> int:
        return 0 if self.k is None else self.k.shape[-2]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.k is None or self.v is None:
            self.k, self.v = k, v
        else:
            self.k = torch.cat((self.k, k), dim=-2)  # (B, H, pos + T, D)
            self.v = torch.cat((self.v, v), dim=-2)
        return self.k, self.v

    def reset(self) -> None:
        self.k = self.v = None


# ----------------------------------------------------------------------------------------
# The layer


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention, GPT-2 layout.

    impl="sdpa" uses the fused kernel; impl="naive" builds the weight matrix explicitly.
    Both give the same result. ``rotary=True`` rotates q and k with RoPE (then the model
    needs no other position encoding).
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        block_size: int,
        dropout: float = 0.0,
        bias: bool = True,
        impl: str = "sdpa",
        rotary: bool = False,
        rope_base: float = 10000.0,
    ) -> None:
        super().__init__()
        if n_head < 1 or n_embd % n_head != 0:
            raise ValueError(
                f"n_embd ({n_embd}) must be divisible by n_head ({n_head}) so that every head "
                f"gets n_embd // n_head dimensions. Valid n_head values for n_embd={n_embd}: "
                f"{_divisors(n_embd)}."
            )
        head_dim = n_embd // n_head
        if rotary and head_dim % 2 != 0:
            good = [h for h in _divisors(n_embd) if (n_embd // h) % 2 == 0]
            raise ValueError(
                f"rotary position embedding needs an even head size, but n_embd // n_head = "
                f"{n_embd} // {n_head} = {head_dim} is odd. Fix: choose n_head from {good} "
                f"(or an n_embd that gives an even head size), or set rotary=False."
            )
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {list(IMPLS)}, got {impl!r}.")
        if block_size < 1:
            raise ValueError(f"block_size must be >= 1, got {block_size}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.n_embd, self.n_head, self.head_dim = n_embd, n_head, head_dim
        self.block_size, self.dropout, self.impl = block_size, dropout, impl
        # key, query, value projections for all heads, in one matrix: output is [q | k | v]
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        # output projection
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.attn_dropout = nn.Dropout(dropout)  # on the attention weights (naive path)
        self.resid_dropout = nn.Dropout(dropout)  # on the output
        self.rotary = Rotary(head_dim, block_size, rope_base) if rotary else None

    def forward(
        self,
        x: Tensor,
        return_weights: bool = False,
        kv_cache: KVCacheLike | None = None,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, T, C) -> y (B, T, C); with ``return_weights`` -> (y, weights (B, H, T, S)).

        ``return_weights`` takes the naive path (the fused kernel never forms the weights);
        the weights returned are before dropout. With ``kv_cache``, x holds only the new
        tokens, at positions kv_cache.pos .. kv_cache.pos + T - 1, and S = kv_cache.pos + T.
        """
        if x.dim() != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(
                f"expected input of shape (B, T, n_embd={self.n_embd}), got {tuple(x.shape)}."
            )
        T = x.shape[1]  # x is (B, T, C)
        start_pos = 0 if kv_cache is None else kv_cache.pos
        check_positions(T, start_pos, self.block_size)

        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 x (B, T, C)
        q = rearrange(q, "b t (h d) -> b h t d", h=self.n_head)  # (B, H, T, D)
        k = rearrange(k, "b t (h d) -> b h t d", h=self.n_head)  # (B, H, T, D)
        v = rearrange(v, "b t (h d) -> b h t d", h=self.n_head)  # (B, H, T, D)
        if self.rotary is not None:
            q = self.rotary(q, start_pos)
            k = self.rotary(k, start_pos)
        if kv_cache is not None:
            k, v = kv_cache.update(k, v)  # (B, H, S, D), S = start_pos + T

        weights = None
        if return_weights or self.impl == "naive":
            weights = attention_weights(q, k, causal=True)  # (B, H, T, S)
            y = self.attn_dropout(weights) @ v  # (B, H, T, D)
        else:
            p = self.dropout if self.training else 0.0
            y = fused_attention(q, k, v, causal=True, dropout_p=p)  # (B, H, T, D)
        y = rearrange(y, "b h t d -> b t (h d)")  # (B, T, C): heads side by side
        y = self.resid_dropout(self.c_proj(y))  # (B, T, C)
        if return_weights:
            assert weights is not None
            return y, weights
        return y

    def extra_repr(self) -> str:
        return (
            f"n_head={self.n_head}, head_dim={self.head_dim}, block_size={self.block_size}, "
            f"impl={self.impl!r}, dropout={self.dropout}"
        )
