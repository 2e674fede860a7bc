"""Position encodings: learned, sinusoidal and rotary (RoPE).

Attention on its own is order-blind: shuffle the tokens and each one sees the same set of
keys and values. A position encoding puts order back in. This module holds the three kinds
lesson 04 builds:

- ``LearnedPositionalEmbedding``: one trained vector per position (GPT-2's ``wpe``),
  added to the token embeddings.
- ``sinusoidal_table`` / ``SinusoidalPositionalEncoding``: the fixed sin/cos table of
  "Attention Is All You Need", also added to the token embeddings. Nothing to train.
- ``Rotary`` / ``apply_rotary``: rotary position embedding (RoPE, Su et al. 2021, used by
  GPT-NeoX and Llama). Nothing is added to the embeddings; instead the queries and keys of
  every attention head are rotated by an angle proportional to their position, so that
  q . k depends only on the *distance* between the two positions.

Shapes, as in nanoGPT: B batch, T sequence length, C embedding size (n_embd), H number of
heads, D head size (C // H).

Every encoding takes a ``start_pos``: the position of the first token in the input. It is 0
for a whole sequence; with a KV cache, the new tokens start at ``start_pos = tokens seen so
far``. Tables never grow: positions past ``block_size`` raise a ValueError that says how
to fix it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = [
    "LearnedPositionalEmbedding",
    "Rotary",
    "SinusoidalPositionalEncoding",
    "apply_rotary",
    "check_positions",
    "rotary_tables",
    "rotate_half",
    "sinusoidal_table",
]


def check_positions(T: int, start_pos: int, block_size: int) -> None:
    """Raise a ValueError unless positions start_pos .. start_pos+T-1 fit in block_size."""
    if start_pos < 0:
        raise ValueError(f"start_pos must be >= 0, got {start_pos}.")
    if T + start_pos > block_size:
        where = (
            f"T = {T} tokens"
            if start_pos == 0
            else (
                f"T = {T} tokens starting at position start_pos = {start_pos} "
                f"(that is {T + start_pos} positions)"
            )
        )
        raise ValueError(
            f"Sequence too long: {where}, but block_size = {block_size}. "
            f"Fix: raise block_size to at least {T + start_pos}, or crop the input to "
            f"its last {block_size} tokens (idx[:, -block_size:])."
        )


def _positions_from(
    T_or_positions: int | Tensor, start_pos: int, block_size: int, device: torch.device
) -> Tensor:
    """Turn an int T (with start_pos) or a tensor of positions into a checked LongTensor."""
    if isinstance(T_or_positions, Tensor):
        pos = T_or_positions.to(device=device, dtype=torch.long)
        if pos.numel() > 0:
            lo, hi = int(pos.min()), int(pos.max())
            if lo < 0 or hi >= block_size:
                raise ValueError(
                    f"Positions must lie in [0, {block_size - 1}], got values from {lo} to "
                    f"{hi}. Fix: raise block_size to at least {hi + 1}, or crop the input to "
                    f"its last {block_size} tokens."
                )
        return pos
    T = int(T_or_positions)
    check_positions(T, start_pos, block_size)
    return torch.arange(start_pos, start_pos + T, dtype=torch.long, device=device)  # (T,)


# ----------------------------------------------------------------------------------------
# Learned


class LearnedPositionalEmbedding(nn.Embedding):
    """One trainable vector per position, as in GPT-2 (``wpe``).

    It *is* an ``nn.Embedding`` of shape (block_size, n_embd), so its state_dict key is just
    ``weight`` and GPT-2's ``wpe.weight`` loads straight in. The difference is the call:

        wpe(T)                 -> (T, C) rows for positions 0 .. T-1
        wpe(T, start_pos=s)    -> (T, C) rows for positions s .. s+T-1
        wpe(positions)         -> positions.shape + (C,) for any LongTensor of positions

    Weights start as N(0, 0.02), GPT-2's initialisation.
    """

    def __init__(self, block_size: int, n_embd: int) -> None:
        if block_size < 1 or n_embd < 1:
            raise ValueError(
                f"block_size and n_embd must be >= 1, got block_size={block_size}, n_embd={n_embd}."
            )
        super().__init__(block_size, n_embd)
        self.block_size = block_size

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, mean=0.0, std=0.02)

    def forward(self, T_or_positions: int | Tensor, start_pos: int = 0) -> Tensor:
        pos = _positions_from(T_or_positions, start_pos, self.block_size, self.weight.device)
        return self.weight[pos]  # (T, C)

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, n_embd={self.embedding_dim}"


# ----------------------------------------------------------------------------------------
# Sinusoidal


def sinusoidal_table(block_size: int, n_embd: int, base: float = 10000.0) -> Tensor:
    """The fixed position table of "Attention Is All You Need" (section 3.5), float32.

        PE[pos, 2i]   = sin(pos / base ** (2i / n_embd))
        PE[pos, 2i+1] = cos(pos / base ** (2i / n_embd))

    Returns a (block_size, n_embd) tensor. Each pair of columns (2i, 2i+1) is a clock hand
    turning at its own speed: fast for small i, slow for large i.
    """
    if n_embd % 2 != 0:
        raise ValueError(
            f"sinusoidal position encoding needs an even n_embd (sin/cos pairs), got "
            f"n_embd = {n_embd}. Fix: use n_embd = {n_embd + 1} or {n_embd - 1}."
        )
    if block_size < 1 or n_embd < 2:
        raise ValueError(
            f"block_size must be >= 1 and n_embd >= 2, got block_size={block_size}, "
            f"n_embd={n_embd}."
        )
    # float64 for the angles: positions in the thousands times float32 rounding adds up
    pos = torch.arange(block_size, dtype=torch.float64)[:, None]  # (T, 1)
    two_i = torch.arange(0, n_embd, 2, dtype=torch.float64)  # (C/2,)
    angles = pos / base ** (two_i / n_embd)  # (T, C/2)
    table = torch.empty(block_size, n_embd, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)  # even columns
    table[:, 1::2] = torch.cos(angles)  # odd columns
    return table.float()  # (T, C)


class SinusoidalPositionalEncoding(nn.Module):
    """The sinusoidal table as a module, called like ``LearnedPositionalEmbedding``.

    The table is a non-persistent buffer: it moves with ``.to(device)`` but is not written
    into checkpoints (it is rebuilt from block_size and n_embd) and has no gradient.
    """

    pe: Tensor

    def __init__(self, block_size: int, n_embd: int, base: float = 10000.0) -> None:
        super().__init__()
        self.block_size, self.n_embd, self.base = block_size, n_embd, base
        self.register_buffer("pe", sinusoidal_table(block_size, n_embd, base), persistent=False)

    def forward(self, T_or_positions: int | Tensor, start_pos: int = 0) -> Tensor:
        pos = _positions_from(T_or_positions, start_pos, self.block_size, self.pe.device)
        return self.pe[pos]  # (T, C)

    def extra_repr(self) -> str:
        return f"block_size={self.block_size}, n_embd={self.n_embd}, base={self.base}"


# ----------------------------------------------------------------------------------------
# Rotary (RoPE)
#
# Pairing convention: split halves, as in GPT-NeoX and Hugging Face Llama. In a head of
# size D, dimension j is paired with dimension j + D/2 (for j < D/2), and pair j turns at
# frequency theta_j = base ** (-2j / D). The paper's "interleaved" form pairs (2j, 2j+1)
# instead; the two are the same rotation up to a fixed permutation of the head dimensions,
# which the learned q/k weights absorb, but weights trained with one do not work with the
# other.


def rotary_tables(head_dim: int, block_size: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """cos and sin tables for RoPE, each (block_size, head_dim), float32, split-halves layout.

    cos[p, j] = cos(p * theta_{j mod D/2}), theta_j = base ** (-2j / D); the same for sin.
    """
    if head_dim % 2 != 0:
        raise ValueError(
            f"rotary position embedding needs an even head size (it rotates pairs of "
            f"dimensions), got head_dim = {head_dim}. Fix: choose n_embd and n_head so that "
            f"n_embd // n_head is even, or turn rotary off."
        )
    if block_size < 1 or head_dim < 2:
        raise ValueError(
            f"block_size must be >= 1 and head_dim >= 2, got block_size={block_size}, "
            f"head_dim={head_dim}."
        )
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (D/2,)
    pos = torch.arange(block_size, dtype=torch.float64)  # (T,)
    angles = torch.outer(pos, inv_freq)  # (T, D/2)
    angles = torch.cat((angles, angles), dim=-1)  # (T, D): both halves share a frequency
    return angles.cos().float(), angles.sin().float()


def rotate_half(x: Tensor) -> Tensor:
    """(x1, x2) -> (-x2, x1) on the two halves of the last dimension: a 90 degree turn."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (..., T, D) by the angles in cos, sin (T, D) (split-halves layout).

    For each pair (x[j], x[j + D/2]) at position p this is the 2-D rotation by p * theta_j:
        x[j]       <- x[j] cos - x[j + D/2] sin
        x[j + D/2] <- x[j + D/2] cos + x[j] sin
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin  # (..., T, D)


class Rotary(nn.Module):
    """Rotary position embedding for one attention layer, with cached cos/sin tables.

        rope = Rotary(head_dim, block_size)
        q = rope(q)                   # q: (B, H, T, D), positions 0 .. T-1
        k = rope(k, start_pos=s)      # positions s .. s+T-1 (new tokens behind a KV cache)
        cos, sin = rope.cos_sin(T, start_pos=s)   # the (T, D) slices, for apply_rotary

    The tables are non-persistent buffers: they follow ``.to(device)`` but are not saved in
    checkpoints. (The method is ``forward``, not ``apply``: ``nn.Module.apply`` already means
    "run a function on every submodule", which model initialisation relies on.)
    """

    cos: Tensor
    sin: Tensor

    def __init__(self, head_dim: int, block_size: int, base: float = 10000.0) -> None:
        super().__init__()
        cos, sin = rotary_tables(head_dim, block_size, base)  # checks head_dim is even
        self.head_dim, self.block_size, self.base = head_dim, block_size, base
        self.register_buffer("cos", cos, persistent=False)  # (block_size, D)
        self.register_buffer("sin", sin, persistent=False)  # (block_size, D)

    def cos_sin(self, T: int, start_pos: int = 0) -> tuple[Tensor, Tensor]:
        check_positions(T, start_pos, self.block_size)
        return self.cos[start_pos : start_pos + T], self.sin[start_pos : start_pos + T]

    def forward(self, x: Tensor, start_pos: int = 0) -> Tensor:
        if x.shape[-1] != self.head_dim:
            raise ValueError(
                f"Rotary was built for head_dim = {self.head_dim} but the input's last "
                f"dimension is {x.shape[-1]}; expected (B, n_head, T, head_dim)."
            )
        cos, sin = self.cos_sin(x.shape[-2], start_pos)  # (T, D) each
        return apply_rotary(x, cos, sin)  # (B, H, T, D)

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, block_size={self.block_size}, base={self.base}"
