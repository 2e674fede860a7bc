"""Token ids -> training batches: random windows of a long 1-D tensor of ids (lesson 08).

A language model learns from windows of ``block_size + 1`` consecutive tokens: the input ``x``
is the first ``block_size`` of them and the target ``y`` the same window shifted by one, so
that at every position the model predicts the next token.

    data = torch.tensor(tok.encode(text))              # 1-D tensor of token ids
    x, y = get_batch(data, batch_size=32, block_size=128, device="cpu")   # (32, 128) each
    fixed = eval_batches(val_data, n=20, batch_size=32, block_size=128, seed=0)

Training draws fresh random windows each step from a dedicated ``torch.Generator``, so the data
order is part of a checkpoint and a resumed run sees the same batches it would have seen.
Evaluation uses the same fixed batches every time, so two evaluations differ only because the
model changed, never because of the luck of the draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["as_token_tensor", "check_batch_args", "eval_batches", "get_batch", "sample_step",
           "windows"]


def as_token_tensor(data: Tensor | np.ndarray | Sequence[int], name: str = "data") -> Tensor:
    """``data`` as a 1-D integer tensor (int64, or int32 kept as is); ValueError otherwise."""
    if data is None:
        raise ValueError(f"{name} is missing: pass a 1-D tensor of token ids, e.g. "
                         "torch.tensor(tokenizer.encode(text)).")
    if isinstance(data, np.ndarray):
        if not np.issubdtype(data.dtype, np.integer):
            raise ValueError(f"{name} must hold integer token ids, got numpy dtype {data.dtype}.")
        data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.int64))
    elif not isinstance(data, Tensor):
        data = torch.as_tensor(list(data), dtype=torch.long)
    if data.dtype.is_floating_point or data.dtype.is_complex or data.dtype == torch.bool:
        raise ValueError(f"{name} must hold integer token ids, got dtype {data.dtype}. "
                         "Fix: encode the text with a tokenizer, then torch.tensor(ids).")
    if data.dim() != 1:
        raise ValueError(f"{name} must be a 1-D tensor of token ids (one long stream), got shape "
                         f"{tuple(data.shape)}. Fix: data.flatten(), or torch.cat(list_of_docs).")
    if data.numel() == 0:
        raise ValueError(f"{name} is empty: there is no text to learn from. Check the corpus "
                         "and the train/validation split.")
    if data.dtype not in (torch.int64, torch.int32):
        data = data.long()
    return data


def check_batch_args(data: Tensor, batch_size: int, block_size: int, name: str = "data") -> None:
    """ValueError unless sizes are positive integers and ``data`` holds one window."""
    for arg, v in (("batch_size", batch_size), ("block_size", block_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{arg} must be a positive integer, got {arg}={v!r}.")
    if len(data) < block_size + 1:
        raise ValueError(
            f"{name} holds {len(data)} tokens, but one training window needs block_size + 1 = "
            f"{block_size + 1} (block_size={block_size} inputs, targets shifted by one). "
            f"Fix: use more text, or a smaller block_size (at most {len(data) - 1}).")


def windows(data: Tensor, starts: Tensor, block_size: int,
            device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """The windows of ``data`` starting at ``starts`` (B,): x = data[s : s+T], y = data[s+1 :
    s+T+1], both (B, T) int64 on ``device``. On CUDA the copy goes through pinned memory,
    asynchronously (non_blocking), so it overlaps with the GPU's work."""
    device = torch.device(device)
    offsets = torch.arange(block_size + 1, device=data.device)
    chunk = data[starts.to(data.device)[:, None] + offsets]  # (B, T + 1), one gather
    x, y = chunk[:, :-1].long(), chunk[:, 1:].long()
    if x.device == device:
        return x.contiguous(), y.contiguous()
    if device.type == "cuda" and x.device.type == "cpu":
        return (x.pin_memory().to(device, non_blocking=True),
                y.pin_memory().to(device, non_blocking=True))
    return x.to(device), y.to(device)


def get_batch(data: Tensor, batch_size: int, block_size: int,
              device: torch.device | str = "cpu",
              generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of ``data``: (x, y), each (batch_size, block_size) int64.

    Every start position in [0, len(data) - block_size) is equally likely (drawn with
    replacement). Pass a seeded ``torch.Generator`` to make the draws repeat.
    """
    data = as_token_tensor(data)
    check_batch_args(data, batch_size, block_size)
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    return windows(data, starts, block_size, device)


def sample_step(data: Tensor, batch_size: int, block_size: int, generator: torch.Generator,
                *, grad_accum: int = 1, world_size: int = 1, rank: int = 0,
                device: torch.device | str = "cpu") -> list[tuple[Tensor, Tensor]]:
    """The micro-batches of one optimizer step that belong to ``rank``.

    One step uses ``world_size * grad_accum`` micro-batches of ``batch_size`` windows: the
    global batch. Every rank draws the start positions of the whole global batch from the same
    generator (same seed, same state: a few integers, cheap) and keeps its own slice: rank r
    gets micro-batches r * grad_accum ... r * grad_accum + grad_accum - 1. So the global batch
    depends only on ``world_size * grad_accum``, not on how it is split between processes and
    accumulation steps: 2 processes x 1 micro-batch see exactly what 1 process x 2 sees.
    With world_size = grad_accum = 1 this draws exactly what :func:`get_batch` draws.
    """
    starts = torch.randint(len(data) - block_size, (world_size * grad_accum, batch_size),
                           generator=generator)
    mine = starts[rank * grad_accum:(rank + 1) * grad_accum]
    return [windows(data, s, block_size, device) for s in mine]


def eval_batches(data: Tensor, n: int, batch_size: int, block_size: int,
                 seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """``n`` fixed batches for evaluation, the same for the same arguments (CPU tensors).

    They come from their own generator seeded with ``seed``: the global random state is neither
    used nor changed, so evaluating never shifts the training run's randomness.
    """
    data = as_token_tensor(data)
    check_batch_args(data, batch_size, block_size)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (the number of evaluation batches) must be a positive integer, "
                         f"got n={n!r}.")
    g = torch.Generator().manual_seed(seed)
    return [get_batch(data, batch_size, block_size, "cpu", generator=g) for _ in range(n)]
