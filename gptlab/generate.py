"""Sampling text from a GPT: temperature, top-k, top-p, repetition penalty, KV cache, streaming.

Lesson 09 builds this file. A language model gives, for every position, logits over the
vocabulary for the *next* token. Generating is a loop: run the model, take the logits of the
last position, turn them into a probability distribution, draw a token, append it, repeat.

The pieces, in the order the sampler applies them to the last position's logits (B, V):

    apply_repetition_penalty(logits, previous_ids, p)  make tokens already used less likely
    apply_temperature(logits, t)                       t < 1 sharpens, t > 1 flattens, 0 = greedy
    top_k_filter(logits, k)                            keep the k most likely tokens
    top_p_filter(logits, p)                            keep the smallest set holding p of the mass
    sampling_probs(logits, ...)                        all of the above, then softmax -> (B, V)

then ``torch.multinomial`` draws from those probabilities (with temperature 0, ``argmax``).
Filtered-out tokens get logit -inf, so softmax gives them probability exactly 0.

The loop itself is ``stream`` (yields each new token as it is made) and ``generate`` (collects
them). ``next_token_distribution`` gives the probabilities of the next token for a prompt
(the sampling playground draws them as a bar chart).

KV cache. Without a cache every step runs the whole context through the model again, although
only the newest token is new: the keys and values of the older tokens do not change (a token
only attends to tokens before it). With a cache each layer keeps its keys and values and a step
runs just the new token. ``StaticKVCache`` preallocates (B, H, block_size, D) buffers once and
writes into them in place; ``gptlab.attention.KVCache`` is the simpler version that
concatenates. ``use_cache=False`` is the reference: same tokens, same logits, just slower.

The context window (the crop rule). The model sees at most ``block_size`` tokens. A prompt
longer than that is cropped from the left: the model sees its last ``block_size`` tokens (the
returned tensor still holds the whole prompt). When the sequence outgrows the window during
generation, each new token again sees exactly the last ``block_size`` tokens, as in nanoGPT's
``idx[:, -block_size:]``. Once the window slides, every token in it has a new position, so the
cache is stale: the cached path then clears the cache and re-runs the whole window, each step,
exactly as the uncached path does. The results are identical either way; the cache speeds up
generation until the context is full, not after.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "StaticKVCache",
    "apply_repetition_penalty",
    "apply_temperature",
    "generate",
    "next_token_distribution",
    "sampling_probs",
    "stream",
    "top_k_filter",
    "top_p_filter",
]

Decode = Callable[[list[int]], str]  # token ids -> text, e.g. tok.decode


# ---------------------------------------------------------------------------- the filters
# Each takes logits (..., V) and returns new logits (..., V); the input is never changed.


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """logits / temperature. Below 1 the distribution gets peakier, above 1 flatter.

    Temperature 0 is the limit: all probability on the largest logit (greedy decoding). It
    returns 0 there and -inf elsewhere (ties: the lowest id wins, as in ``argmax``).
    """
    _check_temperature(temperature)
    if temperature == 0:
        best = logits.argmax(dim=-1, keepdim=True)  # (..., 1): the first of equal maxima
        return torch.full_like(logits, float("-inf")).scatter(-1, best, 0.0)
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the k largest logits of each row, set the others to -inf.

    Tokens tied with the k-th largest are kept too (so a row may keep more than k). With
    k >= V nothing is removed.
    """
    _check_top_k(k)
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities add
    up to at least p, set the others to -inf. The most likely token is always kept; p = 1
    keeps everything. Among equal probabilities the lower id counts as more likely."""
    _check_top_p(p)
    if p >= 1.0:
        return logits.clone()
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)  # (..., V)
    probs = F.softmax(sorted_logits.float(), dim=-1)
    before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above each one
    remove_sorted = before >= p  # the set was already big enough without this token
    remove_sorted[..., 0] = False  # always keep the most likely token
    remove = remove_sorted.scatter(-1, order, remove_sorted)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))


def apply_repetition_penalty(logits: Tensor, previous_ids: Tensor, penalty: float) -> Tensor:
    """Make every token that already occurs in ``previous_ids`` less likely (penalty > 1) or
    more likely (penalty < 1), the CTRL / Hugging Face way: its logit is divided by the
    penalty when positive and multiplied by it when negative. Each token counts once, however
    often it occurs. logits (B, V) or (V,), previous_ids (B, N) or (N,) integer ids."""
    _check_penalty(penalty)
    if previous_ids.numel() == 0:
        return logits.clone()
    ids = previous_ids.long().to(logits.device)
    if logits.dim() == 1:
        return apply_repetition_penalty(logits[None], ids.reshape(1, -1), penalty)[0]
    if ids.dim() == 1:
        ids = ids[None].expand(logits.shape[0], -1)
    seen = logits.gather(-1, ids)  # (B, N) the logits of the tokens already used
    seen = torch.where(seen > 0, seen / penalty, seen * penalty)
    return logits.scatter(-1, ids, seen)  # repeated ids write the same value


def sampling_probs(logits: Tensor, previous_ids: Tensor | None = None, *,
                   temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None,
                   repetition_penalty: float | None = None) -> Tensor:
    """The distribution the sampler draws from: penalty, temperature, top-k, top-p, softmax.

    logits (B, V) or (V,) -> probabilities of the same shape, in float32. ``previous_ids`` are
    the tokens the repetition penalty looks at. Temperature 0 gives a one-hot at the argmax.
    """
    logits = logits.float()
    if repetition_penalty is not None and repetition_penalty != 1.0:
        if previous_ids is None:
            raise ValueError("repetition_penalty needs previous_ids: the tokens used so far.")
        logits = apply_repetition_penalty(logits, previous_ids, repetition_penalty)
    # Shifting the largest logit to 0 changes no probability, but keeps logits / t finite
    # for tiny temperatures (1e-30 would overflow otherwise).
    logits = apply_temperature(logits - logits.amax(dim=-1, keepdim=True), temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return F.softmax(logits, dim=-1)


# ---------------------------------------------------------------------------- the KV cache


class StaticKVCache:
    """A KV cache with preallocated buffers (the fast one ``generate`` uses).

    The first ``update`` allocates keys and values of shape (B, H, max_len, D); each update
    writes the new (B, H, T, D) into the next T slots and returns views of the filled part,
    (B, H, pos + T, D). No copying of old entries, no new memory per step (compare
    ``gptlab.attention.KVCache``, which concatenates). ``reset()`` empties it, keeping the
    buffers.
    """

    def __init__(self, max_len: int) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}.")
        self.max_len = max_len
        self.k: Tensor | None = None  # (B, H, max_len, D)
        self.v: Tensor | None = None
        self._pos = 0

    @property
    def pos(self) -> int:
        return self._pos

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        B, H, T, D = k.shape
        if (self.k is None or self.v is None or self.k.shape != (B, H, self.max_len, D)
                or self.k.dtype != k.dtype or self.k.device != k.device):
            if self._pos:
                raise ValueError(f"StaticKVCache holds {self._pos} tokens of another shape "
                                 f"or dtype than {tuple(k.shape)}; call reset() first.")
            self.k = k.new_empty(B, H, self.max_len, D)
            self.v = v.new_empty(B, H, self.max_len, D)
        end = self._pos + T
        if end > self.max_len:
            raise ValueError(f"StaticKVCache is full: {self._pos} + {T} tokens > max_len "
                             f"{self.max_len}. Call reset() and run the last {self.max_len} "
                             "tokens again.")
        self.k[:, :, self._pos:end] = k
        self.v[:, :, self._pos:end] = v
        self._pos = end
        return self.k[:, :, :end], self.v[:, :, :end]

    def reset(self) -> None:
        self._pos = 0


# ---------------------------------------------------------------------------- generation


def stream(model: nn.Module, idx: Tensor | Sequence[int], max_new_tokens: int,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           repetition_penalty: float | None = None,
           stop: str | int | Sequence[str | int] | None = None, seed: int | None = None,
           use_cache: bool = True, decode: Decode | None = None,
           pad_id: int = 0) -> Iterator[Tensor]:
    """Generate up to ``max_new_tokens`` tokens after ``idx``, yielding each step's new tokens
    as soon as they are made: a LongTensor of shape (B,), one token per row (B = 1 for a 1-D
    prompt, so ``int(t)`` gives the token). The arguments are those of ``generate``.

    The arguments are checked when ``stream`` is called (a ValueError then, not at the first
    ``next``). While the iterator runs, the model is in eval mode; its previous mode comes back
    when the iterator is exhausted or closed.
    """
    idx = _check_idx(idx)
    _check_settings(max_new_tokens, temperature, top_k, top_p, repetition_penalty, seed)
    stop_ids, stop_strs = _check_stop(stop, decode)
    if isinstance(pad_id, bool) or not isinstance(pad_id, int) or pad_id < 0:
        raise ValueError(f"pad_id must be a token id >= 0, got {pad_id!r}.")
    return _stream(model, idx if idx.dim() == 2 else idx[None], max_new_tokens,
                   {"temperature": temperature, "top_k": top_k, "top_p": top_p,
                    "repetition_penalty": repetition_penalty},
                   stop_ids, stop_strs, seed, use_cache, decode, pad_id)


def generate(model: nn.Module, idx: Tensor | Sequence[int], max_new_tokens: int,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             repetition_penalty: float | None = None,
             stop: str | int | Sequence[str | int] | None = None, seed: int | None = None,
             use_cache: bool = True, decode: Decode | None = None, pad_id: int = 0) -> Tensor:
    """Continue ``idx`` by up to ``max_new_tokens`` tokens: (B, T) -> (B, T + new).

    - idx: (B, T) integer token ids (rows of equal length), or a 1-D (T,) prompt (or a list
      of ids), which gives a 1-D result. T >= 1. The result holds the whole of idx, then the
      new tokens, on the model's device. Only the last block_size tokens are shown to the
      model (see the module docstring for the crop rule).
    - temperature: 0 is greedy (argmax, ties to the lowest id); 1 samples the model's own
      distribution. top_k: keep the k most likely tokens. top_p: keep the smallest set of
      most likely tokens with total probability >= top_p. repetition_penalty: > 1 discourages
      tokens already in the sequence (prompt included), 1 or None is off.
    - stop: a string, a token id, or a list of them. A row is done when it produces a stop id,
      or when its new text (``decode`` of the new ids; the prompt does not count) contains a
      stop string. The token that completes the stop is kept in the result: ids cannot hold a
      cut token (drop the stop text with ``text.split(stop)[0]`` after decoding). Generation
      ends when every row is done; rows done earlier are filled with ``pad_id`` meanwhile.
    - seed: sample with a private ``torch.Generator`` seeded with it (same seed, same text; the
      global RNG is neither used nor changed). None uses the global RNG.
    - use_cache: run only the new token each step, with a KV cache (models with
      ``new_kv_caches``); False re-runs the whole window each step (the reference).

    Works for any model called as ``model(idx)`` / ``model(idx, kv_caches=caches)`` that
    returns ``(logits (B, T, V), loss)`` (or just logits), such as ``GPT``. It runs in eval
    mode under ``torch.no_grad`` and restores the model's training mode afterwards.
    """
    idx = _check_idx(idx)
    steps = stream(model, idx, max_new_tokens, temperature, top_k, top_p, repetition_penalty,
                   stop, seed, use_cache, decode, pad_id)
    rows = idx if idx.dim() == 2 else idx[None]
    new = [t[:, None] for t in steps]  # each (B, 1)
    device = new[0].device if new else _model_device(model, rows.device)
    out = torch.cat([rows.to(device).long(), *new], dim=1)  # (B, T + new)
    return out if idx.dim() == 2 else out[0]


@torch.no_grad()
def next_token_distribution(model: nn.Module, idx: Tensor | Sequence[int],
                            temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None,
                            repetition_penalty: float | None = None) -> Tensor:
    """The probabilities the sampler would draw the next token from, after the settings are
    applied: (V,) for a 1-D prompt or a batch of one, (B, V) for a batch of B > 1."""
    idx = _check_idx(idx)
    _check_settings(0, temperature, top_k, top_p, repetition_penalty, None)
    rows = idx if idx.dim() == 2 else idx[None]
    rows = rows.to(_model_device(model, rows.device))
    block_size = _block_size(model)
    was_training = model.training
    model.eval()
    try:
        logits = _logits(model(rows if block_size is None else rows[:, -block_size:]))
    finally:
        model.train(was_training)
    probs = sampling_probs(logits[:, -1, :], rows, temperature=temperature, top_k=top_k,
                           top_p=top_p, repetition_penalty=repetition_penalty)
    return probs[0] if probs.shape[0] == 1 else probs


@torch.no_grad()  # torch switches grad off only while the generator runs, not between yields
def _stream(model: nn.Module, idx: Tensor, max_new_tokens: int, settings: dict[str, Any],
            stop_ids: list[int], stop_strs: list[str], seed: int | None, use_cache: bool,
            decode: Decode | None, pad_id: int) -> Iterator[Tensor]:
    device = _model_device(model, idx.device)
    B, T0 = idx.shape
    seq = torch.empty(B, T0 + max_new_tokens, dtype=torch.long, device=device)  # all tokens
    seq[:, :T0] = idx
    n = T0  # tokens in seq so far
    block = _block_size(model)
    caches = _new_caches(model, block) if use_cache else None
    window_start = 0  # where the cached tokens start in seq
    generator = None if seed is None else torch.Generator(device=device).manual_seed(seed)
    greedy = settings["temperature"] == 0
    penalty = settings["repetition_penalty"] not in (None, 1.0)
    stops = torch.tensor(stop_ids, device=device) if stop_ids else None
    done = torch.zeros(B, dtype=torch.bool, device=device)
    was_training = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            start = 0 if block is None else max(0, n - block)  # the window: seq[:, start:n]
            if caches is None:
                logits = _logits(model(seq[:, start:n]))
            else:
                if start != window_start:  # the window slid: every position changed
                    for cache in caches:
                        cache.reset()
                    window_start = start
                new_from = window_start + caches[0].pos  # the tokens the cache lacks
                logits = _logits(model(seq[:, new_from:n], kv_caches=caches))
            logits = logits[:, -1, :]  # (B, V): only the last position predicts the next
            if greedy and not penalty:
                nxt = logits.argmax(dim=-1)  # (B,)
            else:
                probs = sampling_probs(logits, seq[:, :n] if penalty else None, **settings)
                nxt = (probs.argmax(dim=-1) if greedy else
                       torch.multinomial(probs, 1, generator=generator)[:, 0])  # (B,)
            if stops is not None or stop_strs:
                nxt = nxt.masked_fill(done, pad_id)  # finished rows get padding
            seq[:, n] = nxt
            n += 1
            yield nxt
            if stops is not None:
                done |= torch.isin(nxt, stops)
            if stop_strs:
                assert decode is not None
                for b in range(B):
                    if not done[b]:
                        text = decode(seq[b, T0:n].tolist())
                        done[b] = any(s in text for s in stop_strs)
            if (stops is not None or stop_strs) and bool(done.all()):
                return
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------- helpers


def _logits(out: Any) -> Tensor:
    """A model's output: (logits, loss) as GPT returns it, or bare logits."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _model_device(model: nn.Module, default: torch.device) -> torch.device:
    for p in model.parameters():
        return p.device
    return default


def _block_size(model: nn.Module) -> int | None:
    """The context length (model.config.block_size), or None for a model without a limit."""
    block = getattr(getattr(model, "config", None), "block_size", None)
    return block if isinstance(block, int) else None


def _new_caches(model: nn.Module, block: int | None) -> list[Any] | None:
    """One cache per layer: preallocated when the context length is known, the model's own
    kind otherwise, and None (run uncached) for a model that takes no KV caches."""
    new_kv_caches = getattr(model, "new_kv_caches", None)
    if new_kv_caches is None:
        return None
    caches = new_kv_caches()
    return caches if block is None else [StaticKVCache(block) for _ in caches]


def _check_idx(idx: Tensor | Sequence[int]) -> Tensor:
    if not isinstance(idx, Tensor):
        try:
            idx = torch.tensor(list(idx), dtype=torch.long)
        except (TypeError, ValueError, RuntimeError) as e:
            raise ValueError(f"idx must be a tensor (or list) of integer token ids, got "
                             f"{type(idx).__name__}: {e}") from None
    if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
        raise ValueError(f"idx must hold integer token ids, got dtype {idx.dtype}. "
                         "Fix: idx.long().")
    if idx.dim() not in (1, 2):
        raise ValueError(f"idx must be (T,) or (B, T) token ids, got shape {tuple(idx.shape)}.")
    if idx.shape[-1] == 0 or idx.numel() == 0:
        raise ValueError(f"idx is empty (shape {tuple(idx.shape)}): give at least one prompt "
                         "token, e.g. the id of a newline or of an end-of-text token.")
    return idx


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_temperature(t: float) -> None:
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 <= t < float("inf"):
        raise ValueError(f"temperature must be a number >= 0 (0 = greedy, 1 = the model's own "
                         f"distribution, try 0.8), got {t!r}.")


def _check_top_k(k: int) -> None:
    if not _is_int(k) or k < 1:
        raise ValueError(f"top_k must be an integer >= 1 (or None for no top-k), got {k!r}.")


def _check_top_p(p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (or None for no top-p; try 0.9), got {p!r}.")


def _check_penalty(penalty: float) -> None:
    if (isinstance(penalty, bool) or not isinstance(penalty, (int, float))
            or not 0 < penalty < float("inf")):
        raise ValueError(f"repetition_penalty must be a number > 0 (1 = off, try 1.2), got "
                         f"{penalty!r}.")


def _check_settings(max_new_tokens: int, temperature: float, top_k: int | None,
                    top_p: float | None, repetition_penalty: float | None,
                    seed: int | None) -> None:
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}.")
    _check_temperature(temperature)
    if top_k is not None:
        _check_top_k(top_k)
    if top_p is not None:
        _check_top_p(top_p)
    if repetition_penalty is not None:
        _check_penalty(repetition_penalty)
    if seed is not None and not _is_int(seed):
        raise ValueError(f"seed must be an integer or None, got {seed!r}.")


def _check_stop(stop: str | int | Sequence[str | int] | None,
                decode: Decode | None) -> tuple[list[int], list[str]]:
    """Split ``stop`` into token ids and strings, checking each."""
    if stop is None:
        return [], []
    items = [stop] if isinstance(stop, (str, int)) else list(stop)
    ids, strs = [], []
    for s in items:
        if isinstance(s, str) and s:
            strs.append(s)
        elif _is_int(s) and s >= 0:
            ids.append(s)
        else:
            raise ValueError(f"stop must hold non-empty strings or token ids >= 0, got {s!r}.")
    if strs and not callable(decode):
        raise ValueError(f"stop strings {strs} need decode, a function from token ids to text "
                         "(e.g. decode=tok.decode), to see them in the generated text.")
    return ids, strs
