"""Evaluating a language model (lesson 10): loss, perplexity, bits per byte, memorisation.

    from gptlab.evaluate import evaluate, memorized_spans, longest_overlap
    r = evaluate(model, val_text, tokenizer=tok)      # EvalResult
    r.loss, r.perplexity, r.bits_per_byte
    memorized_spans(sample_text, train_text, min_len=50)   # [(start, length, train_start)]

``evaluate`` scores EVERY token of a text once (not a few random batches, as the trainer's
quick evaluations do): the text is cut into windows of ``block_size`` tokens, each window is
run through the model, and the cross-entropy of each next token is summed.

* Loss: mean nats (natural-log units) per token. Perplexity = exp(loss): the model is as
  unsure as a uniform choice among that many tokens.
* Bits per byte: the total loss in bits divided by the UTF-8 bytes of the text it covers.
  A loss per token depends on the tokenizer (a BPE token holds ~4 bytes, a character ~1),
  so only bits per byte compare a character model with a BPE model fairly.

Memorisation: a model that copies its training set verbatim has learned the text, not the
language. ``memorized_spans`` finds every long exact overlap of a generated text with the
training text, fast enough for a training text of megabytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from gptlab.batches import as_token_tensor

__all__ = ["EvalResult", "Overlap", "bits_per_byte", "evaluate", "longest_overlap",
           "memorized_spans", "perplexity", "text_bytes"]


# ---------------------------------------------------------------------------- metrics


def perplexity(loss: float) -> float:
    """exp(loss) for a loss in nats per token (inf when that overflows)."""
    try:
        return math.exp(loss)
    except OverflowError:
        return math.inf


def bits_per_byte(loss_nats_per_token: float, n_tokens: int, n_bytes: int) -> float:
    """Total loss in bits per byte of text: loss * n_tokens / (ln 2 * n_bytes)."""
    if n_bytes <= 0 or n_tokens < 0:
        raise ValueError(f"bits_per_byte needs n_bytes > 0 and n_tokens >= 0, got "
                         f"n_tokens={n_tokens}, n_bytes={n_bytes}.")
    return loss_nats_per_token * n_tokens / (math.log(2) * n_bytes)


@dataclass(frozen=True)
class EvalResult:
    """What :func:`evaluate` measured over a whole text.

    ``tokens`` is the number of tokens scored (all but the first, which has nothing before
    it to be predicted from) and ``bytes`` the UTF-8 bytes of those tokens; both bits_per_byte
    and bytes are None when the text is unknown (token ids without a tokenizer).
    """

    loss: float  # nats per token
    perplexity: float
    bits_per_byte: float | None
    tokens: int
    bytes: int | None

    @property
    def bits_per_token(self) -> float:
        return self.loss / math.log(2)

    def __str__(self) -> str:
        bpb = f", {self.bits_per_byte:.4f} bits/byte" if self.bits_per_byte is not None else ""
        size = f"{self.tokens:,} tokens" + (f", {self.bytes:,} bytes" if self.bytes else "")
        return f"loss {self.loss:.4f} nats/token, perplexity {self.perplexity:.2f}{bpb} ({size})"


def text_bytes(tokenizer: Any, ids: Sequence[int]) -> int:
    """UTF-8 bytes that ``ids`` stand for: exact for byte-level BPE (``decode_bytes``, even
    when a character is cut between tokens) and for character tokenizers."""
    if hasattr(tokenizer, "decode_bytes"):
        return len(tokenizer.decode_bytes(ids))
    return len(tokenizer.decode(ids).encode("utf-8"))


# ---------------------------------------------------------------------------- evaluate


def _windows(n: int, T: int, stride: int) -> list[tuple[int, int, int]]:
    """(start, length, n_scored) of each window over n tokens. A window's inputs are
    ids[start : start+length], its targets shifted by one; only its last n_scored targets
    count (the others were scored by the window before, with less context)."""
    out, s, scored_to = [], 0, 0  # scored_to: targets at positions <= it are done
    while True:
        e = min(s + T, n - 1)  # the window predicts positions s+1 .. e
        out.append((s, e - s, e - max(scored_to, s)))
        if e == n - 1:
            return out
        scored_to, s = e, s + stride


def _positive_int(name: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {name}={v!r}.")


@torch.no_grad()
def evaluate(model: nn.Module, tokens_or_text: str | Tensor | Sequence[int] | np.ndarray,
             tokenizer: Any = None, block_size: int | None = None, batch_size: int = 8,
             stride: int | None = None, device: str | torch.device | None = None,
             progress: bool = True) -> EvalResult:
    """Loss, perplexity and bits per byte of ``model`` over a whole text (or token ids).

    The text is cut into windows of ``block_size`` tokens (default: the model's context).
    Without ``stride`` they do not overlap: each token is scored once, and the first tokens
    of each window see little context. With ``stride`` < block_size each window starts
    ``stride`` tokens after the last and scores only its last tokens not yet scored: every
    token sees at least block_size - stride tokens of context (a fairer, slower estimate).

    ``device``: where to run (the model is moved there); default the model's own device.
    The model is put in eval mode (no dropout) and back in its mode afterwards.
    """
    if isinstance(tokens_or_text, str):
        if tokenizer is None:
            raise ValueError("evaluate got text but no tokenizer: pass tokenizer=tok (the one "
                             "the model was trained with), or token ids.")
        ids = as_token_tensor(tokenizer.encode(tokens_or_text), "the encoded text")
    else:
        ids = as_token_tensor(tokens_or_text, "tokens_or_text")
    n = len(ids)
    if n < 2:
        raise ValueError(f"the text holds {n} token(s): at least 2 are needed (a token, and "
                         "one to predict from it).")
    T_max = model.config.block_size
    T = T_max if block_size is None else block_size
    _positive_int("block_size", T)
    if T > T_max:
        raise ValueError(f"block_size={T} is larger than the model's context "
                         f"(model.config.block_size={T_max}). Fix: block_size <= {T_max}.")
    _positive_int("batch_size", batch_size)
    stride = T if stride is None else stride
    _positive_int("stride", stride)
    if stride > T:
        raise ValueError(f"stride={stride} is larger than block_size={T}: tokens between "
                         f"windows would never be scored. Fix: stride <= {T}.")
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device

    wins = _windows(n, T, stride)
    groups: list[list[tuple[int, int, int]]] = []  # batches of windows of one length
    for w in wins:
        if groups and len(groups[-1]) < batch_size and groups[-1][0][1] == w[1]:
            groups[-1].append(w)
        else:
            groups.append([w])
    was_training = model.training
    model.eval()
    total = 0.0
    try:
        bar = tqdm(total=len(wins), desc="evaluate", unit="window", disable=not progress,
                   leave=False)
        with bar:
            for group in groups:
                L = group[0][1]
                x = torch.stack([ids[s:s + L] for s, _, _ in group]).long()
                y = torch.stack([ids[s + 1:s + L + 1] for s, _, _ in group]).long()
                for row, (_, _, k) in enumerate(group):
                    y[row, :L - k] = -1  # scored by an earlier window
                logits, _ = model(x.to(dev))
                loss = F.cross_entropy(logits.flatten(0, 1).float(), y.to(dev).flatten(),
                                       ignore_index=-1, reduction="sum")
                total += loss.item()
                bar.update(len(group))
    finally:
        model.train(was_training)
    n_scored = n - 1
    mean = total / n_scored
    n_bytes = None
    if tokenizer is not None:
        n_bytes = text_bytes(tokenizer, ids[1:].tolist())  # the bytes the loss covers
    bpb = bits_per_byte(mean, n_scored, n_bytes) if n_bytes else None
    return EvalResult(loss=mean, perplexity=perplexity(mean), bits_per_byte=bpb,
                      tokens=n_scored, bytes=n_bytes)


# ---------------------------------------------------------------------------- memorisation


class Overlap(NamedTuple):
    """An exact copy: generated[start : start+length] == training[train_start : ...]."""

    start: int  # in the generated text
    length: int
    train_start: int  # in the training text


def _match_forward(a: str, i: int, b: str, j: int) -> int:
    """How many characters a[i:] and b[j:] have in common at their start."""
    lim, n, step = min(len(a) - i, len(b) - j), 0, 64
    while n + step <= lim and a[i + n:i + n + step] == b[j + n:j + n + step]:
        n += step  # whole chunks first: string comparison runs in C
    while n < lim and a[i + n] == b[j + n]:
        n += 1
    return n


def _match_backward(a: str, i: int, b: str, j: int) -> int:
    """How many characters a[:i] and b[:j] have in common at their end."""
    lim, n, step = min(i, j), 0, 64
    while n + step <= lim and a[i - n - step:i - n] == b[j - n - step:j - n]:
        n += step
    while n < lim and a[i - n - 1] == b[j - n - 1]:
        n += 1
    return n


def _check_texts(generated: Any, training_text: Any) -> None:
    for name, v in (("generated", generated), ("training_text", training_text)):
        if not isinstance(v, str):
            raise TypeError(f"{name} must be a str, got {type(v).__name__} (decode token ids "
                            "with the tokenizer first).")


def memorized_spans(generated: str, training_text: str, min_len: int = 50) -> list[Overlap]:
    """Every stretch of ``generated`` of at least ``min_len`` characters that appears verbatim
    in ``training_text``: a list of Overlap(start, length, train_start), by start.

    Each span is as long as it can be (extended both ways while the texts agree); a span that
    lies inside a longer one is left out, and where a span occurs several times in the
    training text the first place is given.

    How: any copy of min_len characters covers ``step = min_len // 2`` consecutive training
    positions at which a k-gram of k = min_len - step + 1 characters starts, so one of them
    is a multiple of ``step``. Only those k-grams are indexed (a dict: ~2 entries per
    min_len characters of training text); every k-gram of ``generated`` is looked up, and
    each hit is extended to its full length. Each alignment is extended once.
    """
    _check_texts(generated, training_text)
    _positive_int("min_len", min_len)
    G, N = len(generated), len(training_text)
    if G < min_len or N < min_len:
        return []
    step = max(1, min_len // 2)
    k = min_len - step + 1
    index: dict[str, list[int]] = {}
    for p in range(0, N - k + 1, step):
        index.setdefault(training_text[p:p + k], []).append(p)
    covered: dict[int, tuple[int, int]] = {}  # diagonal (train - gen) -> last span found on it
    best: dict[tuple[int, int], int] = {}  # (start, length) -> first train_start
    for i in range(G - k + 1):
        hits = index.get(generated[i:i + k])
        if hits is None:
            continue
        for p in hits:
            d = p - i
            span = covered.get(d)
            if span is not None and span[0] <= i < span[1]:
                continue  # already part of a span found on this alignment
            left = _match_backward(generated, i, training_text, p)
            right = _match_forward(generated, i + k, training_text, p + k)
            start, end = i - left, i + k + right
            covered[d] = (start, end)
            if end - start >= min_len:
                key = (start, end - start)
                best[key] = min(best.get(key, p - left), p - left)
    spans, reach = [], -1
    for (start, length), train_start in sorted(best.items(), key=lambda kv: (kv[0][0],
                                                                            -kv[0][1])):
        if start + length > reach:  # not inside a span already kept
            spans.append(Overlap(start, length, train_start))
            reach = start + length
    return spans


def longest_overlap(generated: str, training_text: str) -> Overlap | None:
    """The longest stretch of ``generated`` that appears verbatim in ``training_text``
    (Overlap(start, length, train_start)), or None when they share no character.

    Linear time: a suffix automaton of ``generated`` (every substring of it, as states) is
    built, then the training text streams through it, tracking the longest suffix of what
    was read that is a substring of ``generated``.
    """
    _check_texts(generated, training_text)
    nxt: list[dict[str, int]] = [{}]
    link, length, first_end = [-1], [0], [-1]
    last = 0
    for pos, ch in enumerate(generated):
        cur = len(length)
        nxt.append({})
        link.append(-1)
        length.append(length[last] + 1)
        first_end.append(pos)
        p = last
        while p != -1 and ch not in nxt[p]:
            nxt[p][ch] = cur
            p = link[p]
        if p != -1:
            q = nxt[p][ch]
            if length[p] + 1 == length[q]:
                link[cur] = q
            else:  # split q: a clone takes the shorter strings
                clone = len(length)
                nxt.append(dict(nxt[q]))
                link.append(link[q])
                length.append(length[p] + 1)
                first_end.append(first_end[q])
                while p != -1 and nxt[p].get(ch) == q:
                    nxt[p][ch] = clone
                    p = link[p]
                link[q] = link[cur] = clone
        else:
            link[cur] = 0
        last = cur
    v = n = 0
    best_len = best_end = best_state = 0
    for j, ch in enumerate(training_text):
        while v and ch not in nxt[v]:
            v = link[v]
            n = length[v]
        if ch in nxt[v]:
            v = nxt[v][ch]
            n += 1
        if n > best_len:
            best_len, best_end, best_state = n, j, v
    if best_len == 0:
        return None
    return Overlap(first_end[best_state] - best_len + 1, best_len, best_end - best_len + 1)
