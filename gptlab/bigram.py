"""The bigram language model of lesson 03: the next token from the current one, nothing more.

Two ways to get the same model:

- counting: :func:`bigram_counts` tallies which token follows which, :func:`bigram_probs`
  turns the tallies into a table of next-token probabilities (row ``a`` is the distribution
  of what follows ``a``). With ``smoothing=0`` this is the exact maximum-likelihood answer;
  :func:`nll` scores a sequence under such a table.
- learning: :class:`BigramLM` holds a table of logits (or, with ``n_embd``, an embedding
  followed by a linear layer) and is trained by gradient descent on the same loss. Its
  interface is the GPT's: ``logits, loss = model(idx, targets)``.

Shapes as in nanoGPT: B batch, T sequence length, V vocab_size, C n_embd.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["BigramLM", "bigram_counts", "bigram_probs", "nll"]


def _check_ids(ids: Tensor, vocab_size: int | None = None, what: str = "ids") -> Tensor:
    """A 1-D integer tensor of token ids, inside [0, vocab_size) when that is given."""
    if not isinstance(ids, Tensor):
        ids = torch.as_tensor(ids)
    if ids.dim() != 1 or ids.dtype.is_floating_point or ids.dtype.is_complex or \
            ids.dtype == torch.bool:
        raise ValueError(f"{what} must be a 1-D tensor of integer token ids, got shape "
                         f"{tuple(ids.shape)} and dtype {ids.dtype}; e.g. "
                         "torch.tensor(tok.encode(text))")
    ids = ids.long()
    if vocab_size is not None and ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        bad = ids.min().item() if ids.min() < 0 else ids.max().item()
        raise ValueError(f"token id {bad} in {what} is outside the vocabulary [0, {vocab_size}); "
                         "pass the tokenizer's vocab_size")
    return ids


def bigram_counts(ids: Tensor, vocab_size: int) -> Tensor:
    """How often each token follows each other one: ``counts[a, b]`` = number of ``t`` with
    ``ids[t] == a`` and ``ids[t + 1] == b``. A (V, V) int64 tensor summing to ``len(ids) - 1``.

    >>> bigram_counts(torch.tensor([0, 1, 0, 1]), 2).tolist()
    [[0, 2], [1, 0]]
    """
    ids = _check_ids(ids, vocab_size)
    pairs = ids[:-1] * vocab_size + ids[1:]  # one number per (current, next) pair
    return torch.bincount(pairs, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size)


def bigram_probs(ids: Tensor, vocab_size: int, smoothing: float = 1.0) -> Tensor:
    """Next-token probabilities from counts: ``(counts + smoothing)`` with each row divided by
    its sum, a (V, V) float32 tensor whose rows sum to 1.

    ``smoothing`` (add-k, "Laplace" for 1) gives every pair a little probability, so a pair
    never seen in training does not get probability 0 (and an infinite loss). With
    ``smoothing=0`` the table is the maximum-likelihood estimate; a token that is never
    followed by anything then gets a uniform row.
    """
    if not smoothing >= 0:
        raise ValueError(f"smoothing must be >= 0, got {smoothing!r}")
    counts = bigram_counts(ids, vocab_size).float() + smoothing
    totals = counts.sum(dim=1, keepdim=True)  # (V, 1): how often each token has a successor
    probs = counts / totals.clamp(min=1e-30)
    return torch.where(totals > 0, probs, torch.full_like(probs, 1.0 / vocab_size))


def nll(probs: Tensor, ids: Tensor) -> Tensor:
    """The average negative log-likelihood of ``ids`` under the next-token table ``probs``
    (V, V): ``mean over t of -ln probs[ids[t], ids[t + 1]]``, a 0-d tensor, in nats.

    A uniform table gives ``ln(V)``; a pair of probability 0 gives ``inf``.
    """
    if probs.dim() != 2 or probs.shape[0] != probs.shape[1]:
        raise ValueError(f"probs must be a square (V, V) table, got shape {tuple(probs.shape)}")
    ids = _check_ids(ids, probs.shape[0])
    if ids.numel() < 2:
        raise ValueError("ids needs at least 2 tokens: the loss scores each next token")
    return -probs[ids[:-1], ids[1:]].log().mean()


class BigramLM(nn.Module):
    """Logits for the next token from the current token alone.

    ``BigramLM(V)``: ``wte`` is a (V, V) table; row ``a`` holds the logits of what follows
    ``a``. ``BigramLM(V, n_embd=C)``: ``wte`` is a (V, C) embedding and ``lm_head`` a linear
    layer C -> V, so every token must be described by C numbers (its embedding), and tokens
    that are followed by similar things get similar embeddings. The names follow the GPT
    (``wte``, ``lm_head``). Weights start small (std ``init_std``), so the first predictions
    are nearly uniform and the initial loss is close to ``ln(V)``.
    """

    def __init__(self, vocab_size: int, n_embd: int | None = None, init_std: float = 0.02):
        super().__init__()
        if not isinstance(vocab_size, int) or vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        if n_embd is not None and (not isinstance(n_embd, int) or n_embd < 1):
            raise ValueError(f"n_embd must be a positive int or None, got {n_embd!r}")
        self.vocab_size = vocab_size
        self.n_embd = n_embd
        self.wte = nn.Embedding(vocab_size, n_embd or vocab_size)
        self.lm_head = nn.Linear(n_embd, vocab_size) if n_embd else None
        nn.init.normal_(self.wte.weight, std=init_std)
        if self.lm_head is not None:
            nn.init.normal_(self.lm_head.weight, std=init_std)
            nn.init.zeros_(self.lm_head.bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V), and the mean cross-entropy against
        targets (B, T) (None without targets)."""
        if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.dtype.is_floating_point:
            got = f"{tuple(idx.shape)} {idx.dtype}" if isinstance(idx, Tensor) else type(idx)
            raise ValueError(f"idx must be a (B, T) tensor of integer token ids, got {got}. "
                             "A single sequence needs a batch dimension: idx[None].")
        x = self.wte(idx)  # (B, T, C), or (B, T, V) for the plain table
        logits = x if self.lm_head is None else self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got "
                             f"{tuple(targets.shape)}")
        loss = F.cross_entropy(logits.view(-1, self.vocab_size), targets.reshape(-1))
        return logits, loss

    def logits_table(self) -> Tensor:
        """The whole model as a (V, V) table: row ``a`` = the logits after token ``a``."""
        idx = torch.arange(self.vocab_size, device=self.wte.weight.device)
        return self(idx[None])[0][0]

    @torch.no_grad()
    def generate(self, idx: Tensor, max_new_tokens: int, temperature: float = 1.0,
                 generator: torch.Generator | None = None) -> Tensor:
        """Extend idx (B, T) by ``max_new_tokens`` sampled tokens: (B, T + max_new_tokens).

        Each new token is drawn from ``softmax(logits / temperature)`` of the last one.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -1:])  # (B, 1, V): only the last token matters
            probs = F.softmax(logits[:, -1] / temperature, dim=-1)  # (B, V)
            nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
            idx = torch.cat([idx, nxt], dim=1)
        return idx

