"""Checkers for lesson 09 (sampling): temperature, top-k and top-p filtering.

Each learner function is compared with gptlab's reference (``gptlab.generate``) on hand-made
logits (ties, -inf entries, edge cases such as k >= V and p = 1) and on random batches of
shape (B, V). A filter's answer is judged as a set of kept tokens per row, so the message can
say which token ids should have been kept and why.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gptlab.checks.core import (
    LearnerError,
    call,
    exercise,
    expect_close,
    expect_shape,
    expect_true,
    expect_type,
    fail,
    short_repr,
)
from gptlab.generate import apply_temperature, top_k_filter, top_p_filter

__all__ = ["check_softmax_with_temperature", "check_top_k_filter", "check_top_p_filter"]

NEG_INF = float("-inf")


def _random_logits(generator: torch.Generator, *shape: int, scale: float = 2.0) -> Tensor:
    return torch.randn(*shape, generator=generator) * scale


def _call_unchanged(fn, logits: Tensor, *args) -> Tensor:
    """Call fn(logits, *args) and make sure it left ``logits`` alone."""
    before = logits.clone()
    got = call(fn, logits, *args)
    expect_true(torch.equal(logits, before),
                f"your function changed its input logits in place (shape {tuple(logits.shape)}). "
                "Return a new tensor instead: avoid logits /= ..., logits[...] = ..., "
                "masked_fill_ and other in-place operations (masked_fill without _ is fine).")
    return got


# ----------------------------------------------------------------------------- 9.1


def _temperature_cases() -> list[tuple[Tensor, float, str]]:
    g = torch.Generator().manual_seed(9)
    return [
        (torch.tensor([2.0, 1.0, 0.0]), 1.0, "temperature 1 (the model's own distribution)"),
        (torch.tensor([2.0, 1.0, 0.0]), 0.5, "temperature 0.5 (sharper)"),
        (torch.tensor([2.0, 1.0, 0.0]), 2, "temperature 2, given as an int (flatter)"),
        (torch.tensor([1.0, 1.0, 0.0, 1.0]), 0.7, "tied logits (equal probabilities)"),
        (torch.tensor([0.0, NEG_INF, 1.0, NEG_INF]), 0.5,
         "-inf logits (tokens a filter removed: probability 0)"),
        (_random_logits(g, 4, 65), 0.8, "a batch of 4 rows over 65 tokens"),
        (_random_logits(g, 3, 65), 1.5, "a batch at temperature 1.5"),
        (torch.tensor([[1000.0, 998.0, 0.0], [-5.0, -1000.0, 3.0]]), 0.1,
         "huge logits at a small temperature (exp overflows unless you subtract the max)"),
        (_random_logits(g, 2, 30), 1e-3, "a tiny temperature (almost greedy)"),
        (_random_logits(g, 30), 100.0, "a huge temperature (almost uniform)"),
    ]


@exercise("9.1", "softmax with a temperature")
def check_softmax_with_temperature(fn):
    """Check ``softmax_with_temperature(logits: Tensor, temperature: float) -> Tensor``.

    ``logits`` has shape (V,) or (B, V); the function returns the probabilities
    ``softmax(logits / temperature)`` over the last dimension, same shape, each row summing to
    1, without changing ``logits``. ``temperature > 0`` (the sampler handles 0, greedy, itself).
    -inf logits get probability 0. Compared with ``softmax(gptlab.generate.apply_temperature)``.
    """
    cases = _temperature_cases()
    for logits, t, what in cases:
        got = _call_unchanged(fn, logits, t)
        label = f"softmax_with_temperature(logits, {t}) for {what}"
        expect_type(got, Tensor, label)
        expect_shape(got, logits.shape, label, logits)
        expected = torch.softmax(apply_temperature(logits, t), dim=-1)
        gotf = got.detach().float()
        if torch.isnan(gotf).any():
            if logits.isfinite().all() and (logits.abs().max() / t) > 80:
                fail(f"{label}: got NaN. exp(logits / temperature) overflows to inf here "
                     f"(the largest logit / temperature is {float(logits.abs().max() / t):.0f}), "
                     "and inf / inf is NaN. Subtract each row's maximum before exp() (or use "
                     "torch.softmax, which does): the probabilities stay the same.")
            fail(f"{label}: got NaN for input {short_repr(logits)}. -inf logits must give "
                 "probability 0 (exp(-inf) = 0); check that nothing computes -inf - (-inf) or "
                 "0 * inf.")
        if torch.allclose(gotf, expected, atol=1e-6, rtol=1e-5):
            continue
        if torch.allclose(gotf, logits / t, atol=1e-6, rtol=1e-5, equal_nan=True):
            fail(f"{label}: you returned logits / temperature; return probabilities: the "
                 "softmax of that over the last dimension (dim=-1).")
        if t != 1 and torch.allclose(gotf, torch.softmax(logits * t, dim=-1), atol=1e-6,
                                     rtol=1e-5):
            fail(f"{label}: you multiplied the logits by the temperature; divide them. A "
                 "temperature below 1 must make the distribution sharper (logits / 0.5 doubles "
                 "the gaps between them).")
        if t != 1 and torch.allclose(gotf, torch.softmax(logits, dim=-1), atol=1e-6, rtol=1e-5):
            fail(f"{label}: the result is the softmax of the logits without the temperature; "
                 "divide the logits by the temperature first.")
        sums = gotf.sum(dim=-1)
        if not torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
            columns = gotf.sum(dim=0) if gotf.dim() == 2 else sums
            hint = ("Take the softmax over the last dimension (dim=-1): dim=0 normalises the "
                    "columns of a (B, V) batch, not its rows."
                    if gotf.dim() == 2 and torch.allclose(columns, torch.ones_like(columns))
                    else "Divide exp(...) by its sum over the last dimension (dim=-1, "
                    "keepdim=True), or use torch.softmax(..., dim=-1).")
            fail(f"{label}: every row should sum to 1 over the vocabulary (the last "
                 f"dimension), got sums {[round(s, 4) for s in sums.flatten()[:4].tolist()]}. "
                 + hint)
        expect_close(got, expected, atol=1e-6, rtol=1e-5, what=label, example=logits)
    return f"matches softmax(logits / t) on {len(cases)} inputs, batches, ties and -inf included"


# ----------------------------------------------------------------------------- filters


def _kept(row: Tensor) -> list[int]:
    return [int(i) for i in torch.nonzero(row != NEG_INF).flatten()]


def _expect_filtered(got, logits: Tensor, expected: Tensor, label: str, rule: str,
                     explain=None) -> None:
    """``got`` keeps exactly the tokens ``expected`` keeps, with their logits unchanged, and
    -inf everywhere else. ``explain(row, kept_got, kept_expected)`` may give a more specific
    reason for a row whose kept set is wrong (or None)."""
    expect_type(got, Tensor, label)
    expect_shape(got, logits.shape, label, logits)
    got = got.detach()
    if not got.dtype.is_floating_point:
        fail(f"{label}: expected float logits, got a tensor of dtype {got.dtype}.")
    if torch.isnan(got).any():
        fail(f"{label}: got NaN for input {short_repr(logits)}; a filter only replaces some "
             "logits with float('-inf').")
    sums = got.float().sum(dim=-1)
    if (((got >= 0) & (got <= 1)).all() and torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
            and not torch.equal(got, logits)):
        fail(f"{label}: you returned probabilities (every row sums to 1). A filter returns "
             "logits: the kept ones unchanged, the removed ones -inf; the softmax comes "
             "afterwards (gptlab's sampling_probs applies it last).")
    g2, x2, e2 = (t.reshape(-1, t.shape[-1]) for t in (got, logits, expected))
    for r in range(g2.shape[0]):
        kept_g, kept_e = _kept(g2[r]), _kept(e2[r])
        if kept_g != kept_e:
            extra = [i for i in kept_g if i not in kept_e]  # removed, but not set to -inf?
            fillers = {float(g2[r, i]) for i in extra}
            if (extra and set(kept_e) <= set(kept_g) and len(fillers) == 1
                    and any(g2[r, i] != x2[r, i] for i in extra)):
                value = fillers.pop()
                zero = (" 0 is an ordinary logit (as likely as any token with logit 0)."
                        if value == 0 else "")
                fail(f"{label}: removed tokens must get the logit float('-inf'), you gave them "
                     f"{value:g}.{zero} With -inf, softmax gives them probability exactly 0, "
                     "and a later filter sees them as gone.")
            row = f"row {r} " if g2.shape[0] > 1 else ""
            reason = explain(r, kept_g, kept_e) if explain else None
            msg = (f"{label}: {row}should keep token ids {_ids(kept_e)}, you kept "
                   f"{_ids(kept_g)}.\n  logits{f' of row {r}' if row else ''}: "
                   f"{_fmt_row(x2[r])}\n  rule: {rule}")
            fail(msg + (f"\n  {reason}" if reason else ""))
        kept = torch.tensor(kept_e, dtype=torch.long)
        if len(kept) and not torch.equal(g2[r, kept].float(), x2[r, kept].float()):
            i = int(kept[(g2[r, kept] != x2[r, kept]).nonzero()[0, 0]])
            fail(f"{label}: the kept tokens must keep their logits unchanged, in their own "
                 f"positions: token {i} has logit {float(x2[r, i]):.4g}, you returned "
                 f"{float(g2[r, i]):.4g}. Only replace the removed ones with -inf (no softmax, "
                 "no sorting in the result).")


def _ids(ids: list[int]) -> str:
    return str(ids) if len(ids) <= 12 else f"{ids[:12]}... ({len(ids)} in all)"


def _fmt_row(row: Tensor) -> str:
    if row.numel() > 12:
        return f"{row.numel()} values (a random row)"
    return "[" + ", ".join("-inf" if v == NEG_INF else f"{v:.3g}" for v in row.tolist()) + "]"


# ----------------------------------------------------------------------------- 9.2


TOP_K_RULE = ("keep every logit >= the k-th largest of its row (ties with it stay), "
              "set the others to -inf; k >= V keeps everything")


def _top_k_cases() -> list[tuple[Tensor, int, str]]:
    g = torch.Generator().manual_seed(92)
    rounded = (_random_logits(g, 4, 40) * 2).round() / 2  # many equal values
    return [
        (torch.tensor([1.0, 3.0, 2.0, 0.0]), 2, "4 logits, k=2"),
        (torch.tensor([1.0, 3.0, 2.0, 0.0]), 1, "k=1 (only the most likely token)"),
        (torch.tensor([[0.5, -1.0, 2.0, 1.0, 0.0], [3.0, 2.0, 1.0, 0.0, -1.0]]), 3,
         "a batch of 2 rows, k=3 (each row keeps its own top 3)"),
        (torch.tensor([4.0, 3.0, 3.0, 1.0]), 2, "a tie at the k-th place"),
        (torch.tensor([2.0, 5.0, 5.0, 1.0, 5.0]), 2, "three tokens tied for first, k=2"),
        (torch.tensor([1.0, 3.0, 2.0, 0.0]), 4, "k = V (nothing to remove)"),
        (torch.tensor([[1.0, 3.0, 2.0], [0.0, 0.5, -1.0]]), 10, "k > V (nothing to remove)"),
        (torch.tensor([0.0, NEG_INF, NEG_INF, 1.0, 0.5]), 2, "-inf logits, k=2"),
        (_random_logits(g, 6, 65), 10, "a batch of 6 rows over 65 tokens, k=10"),
        (rounded, 5, "a batch of 4 rows with many ties, k=5"),
    ]


def _top_k_explain(logits: Tensor, k: int):
    def explain(r: int, kept_g: list[int], kept_e: list[int]) -> str | None:
        row = logits.reshape(-1, logits.shape[-1])[r]
        V = row.shape[-1]
        if k >= V:
            return f"k={k} >= V={V}: keep every token."
        if len(kept_g) == k and len(kept_e) > k:
            return ("tokens tied with the k-th largest logit must be kept too: compare every "
                    "logit with the k-th largest value (torch.topk(logits, k).values[..., -1:]) "
                    "instead of keeping the k indices topk returns.")
        if logits.dim() == 2 and set(kept_g) != set(kept_e):
            flat_kth = torch.topk(logits.flatten(), k).values[-1]
            if kept_g == _kept(torch.where(row >= flat_kth, row, NEG_INF)):
                return ("each row needs its own k-th largest value: take topk over the last "
                        "dimension (dim=-1) and keep the dimension (values[..., -1:]) so it "
                        "broadcasts against its row.")
        if len(kept_e) == k and len(kept_g) in (k - 1, k + 1):
            return (f"you kept {len(kept_g)} tokens; with no ties, exactly k={k} should stay "
                    "(an off-by-one: the k-th largest itself is kept, use >=, not >).")
        return None

    return explain


@exercise("9.2", "top-k filtering")
def check_top_k_filter(fn):
    """Check ``top_k_filter(logits: Tensor, k: int) -> Tensor``.

    ``logits`` (V,) or (B, V); returns new logits of the same shape where, in every row, the
    logits smaller than that row's k-th largest are set to -inf and the others are unchanged
    (ties with the k-th largest stay, so a row may keep more than k tokens; k >= V keeps
    everything). ``logits`` is not changed. Compared with ``gptlab.generate.top_k_filter``.
    """
    cases = _top_k_cases()
    for logits, k, what in cases:
        label = f"top_k_filter(logits, k={k}) for {what}"
        try:
            got = _call_unchanged(fn, logits, k)
        except LearnerError as err:
            if k > logits.shape[-1]:
                fail(f"{label}: your code raised {type(err.original).__name__}: "
                     f"{err.original}\n  k can be larger than the vocabulary V="
                     f"{logits.shape[-1]} (torch.topk refuses k > V): then there is nothing "
                     "to remove, so return a copy of the logits (logits.clone()).")
            raise
        _expect_filtered(got, logits, top_k_filter(logits, k), label, TOP_K_RULE,
                         _top_k_explain(logits, k))
    return f"matches gptlab's top_k_filter on {len(cases)} inputs, ties, k >= V and batches included"


# ----------------------------------------------------------------------------- 9.3


TOP_P_RULE = ("sort by probability (ties: lower id first), keep the smallest prefix whose "
              "probabilities add up to >= p (always the first token), remove the rest")


def _logits_of(probs: list[float]) -> Tensor:
    return torch.tensor(probs).log()


def _top_p_cases() -> list[tuple[Tensor, float, str]]:
    g = torch.Generator().manual_seed(93)
    peaky = _random_logits(g, 3, 65, scale=4.0)
    flat = _random_logits(g, 3, 65, scale=0.5)
    rounded = (_random_logits(g, 4, 30) * 2).round() / 2
    return [
        (_logits_of([0.1, 0.5, 0.15, 0.25]), 0.7,
         "probabilities [0.1, 0.5, 0.15, 0.25], p=0.7"),
        (_logits_of([0.1, 0.5, 0.15, 0.25]), 0.3, "the same, p=0.3 (the top token alone)"),
        (_logits_of([0.1, 0.5, 0.15, 0.25]), 0.01, "a tiny p=0.01"),
        (_logits_of([0.1, 0.5, 0.15, 0.25]), 0.9, "the same, p=0.9"),
        (torch.zeros(4), 0.5, "4 equally likely tokens (0.25 each), p=0.5"),
        (torch.tensor([1.0, 2.0, 2.0, 2.0, 0.0]), 0.5, "three tokens tied for first, p=0.5"),
        (torch.tensor([10.0, 0.0, -10.0, -20.0]), 1.0, "p=1 (keep everything)"),
        (torch.tensor([[0.0, NEG_INF, 1.0, NEG_INF], [2.0, 1.0, 0.0, -1.0]]), 0.9,
         "-inf logits and a batch of 2, p=0.9"),
        (torch.cat([peaky, flat]), 0.9, "6 rows (3 peaked, 3 flat) over 65 tokens, p=0.9"),
        (rounded, 0.6, "a batch of 4 rows with many ties, p=0.6"),
    ]


def _top_p_explain(logits: Tensor, p: float):
    rows = logits.reshape(-1, logits.shape[-1])

    def explain(r: int, kept_g: list[int], kept_e: list[int]) -> str | None:
        probs = torch.softmax(rows[r].double(), dim=-1)
        top = int(torch.sort(probs, descending=True, stable=True).indices[0])
        if not kept_g:
            return (f"every token was removed. The most likely token is always kept (here id "
                    f"{top}, probability {float(probs[top]):.3g}), even when it alone holds "
                    "more than p.")
        if p >= 1 and len(kept_g) < len(kept_e):
            return ("p = 1 keeps every token. Rounding can make the running total reach 1.0 "
                    "before the last, least likely tokens: treat p >= 1 as 'no filtering' "
                    "(return a copy).")
        mass_e = float(probs[kept_e].sum())
        if len(kept_g) > len(kept_e) and set(kept_e) <= set(kept_g):
            return (f"you kept too many: the tokens {kept_e} already hold {mass_e:.3g} >= p="
                    f"{p:g}. Remove a token when the probability of the tokens ranked above it "
                    "(cumsum - probs) is already >= p.")
        if len(kept_g) < len(kept_e) and set(kept_g) <= set(kept_e):
            mass_g = float(probs[kept_g].sum())
            return (f"you kept too few: your tokens hold only {mass_g:.3g} < p={p:g}. The token "
                    "that takes the running total to p or past it is kept too (remove a token "
                    "only when the tokens ranked above it already hold >= p).")
        if len(kept_g) == len(kept_e):
            tied = len(set(probs[kept_g + kept_e].tolist())) < len(set(kept_g + kept_e))
            if tied:
                return ("the right number of tokens, but not the right ones among equal "
                        "probabilities: a tie goes to the lower token id. Sort with "
                        "torch.sort(..., descending=True, stable=True), which keeps equal "
                        "values in id order (the default sort may shuffle them).")
            return ("the right number of tokens, but not the right ones: after deciding what "
                    "to remove in sorted order, put the decision back in vocabulary order "
                    "(mask.scatter(-1, order, mask_sorted), or index with the sort order).")
        return None

    return explain


@exercise("9.3", "top-p (nucleus) filtering")
def check_top_p_filter(fn):
    """Check ``top_p_filter(logits: Tensor, p: float) -> Tensor``.

    ``logits`` (V,) or (B, V), ``0 < p <= 1``; in every row, keeps the smallest set of most
    likely tokens whose probabilities add up to at least p (the most likely token always;
    among equal probabilities the lower id counts as more likely; p = 1 keeps everything) and
    sets the other logits to -inf. The kept logits are unchanged, ``logits`` is not changed.
    Compared with ``gptlab.generate.top_p_filter``.
    """
    cases = _top_p_cases()
    for logits, p, what in cases:
        label = f"top_p_filter(logits, p={p}) for {what}"
        got = _call_unchanged(fn, logits, p)
        _expect_filtered(got, logits, top_p_filter(logits, p), label, TOP_P_RULE,
                         _top_p_explain(logits, p))
    return (f"matches gptlab's top_p_filter on {len(cases)} inputs, ties, p = 1 and batches "
            "included")

