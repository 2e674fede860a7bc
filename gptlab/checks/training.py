"""Checkers for lesson 08 (training): the learning-rate schedule, gradient clipping, and
AdamW's weight-decay groups.

Each compares the learner's function with what the library's training loop does:
``gptlab.schedule.lr_at``, ``torch.nn.utils.clip_grad_norm_`` and the parameter groups of
``gptlab.schedule.configure_optimizer``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_true,
    expect_type,
    fail,
    short_repr,
)
from gptlab.config import GPTConfig
from gptlab.schedule import configure_optimizer, lr_at

__all__ = ["check_clip_grad_norm", "check_get_lr", "check_split_decay"]


# ----------------------------------------------------------------------------- 8.1


def _schedule(max_lr: float, min_lr: float, warmup: int, decay: int) -> SimpleNamespace:
    """What lr_at reads: a stand-in for a TrainConfig."""
    return SimpleNamespace(lr=max_lr, min_lr=min_lr, warmup_steps=warmup, lr_decay_steps=decay,
                           max_steps=decay)


def _as_float(x: object) -> float | None:
    if isinstance(x, Tensor) and x.numel() == 1:
        return float(x.item())
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return float(x)
    return None


def _cosine(step: int, max_lr: float, min_lr: float, start: int, end: int) -> float:
    ratio = (step - start) / max(1, end - start)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (max_lr - min_lr)


def _lr_hint(step: int, got: float, max_lr: float, min_lr: float, warmup: int,
             decay: int) -> str:
    """Why ``got`` is wrong at ``step``: the usual slips, recognised by their values."""
    def near(x: float) -> bool:
        return math.isclose(got, x, rel_tol=1e-6, abs_tol=1e-12)

    if step < warmup:
        if near(max_lr * step / warmup):
            return ("during warmup use max_lr * (step + 1) / (warmup + 1): with step / warmup, "
                    "step 0 gets learning rate 0 and the first update is wasted.")
        if near(max_lr * (step + 1) / warmup):
            return ("during warmup use max_lr * (step + 1) / (warmup + 1), so the ramp ends "
                    "just below max_lr and reaches it at step = warmup.")
        return "during warmup (step < warmup) the rate is max_lr * (step + 1) / (warmup + 1)."
    if step >= decay:
        return ("after decay_steps the rate stays at min_lr (step >= decay_steps: return "
                "min_lr), it does not follow the cosine back up.")
    if near(_cosine(step, max_lr, 0.0, warmup, decay)):
        return ("the cosine must end at min_lr, not at 0: min_lr + coeff * (max_lr - min_lr) "
                "with coeff = 0.5 * (1 + cos(pi * ratio)).")
    if near(_cosine(step, max_lr, min_lr, 0, decay)):
        return ("the cosine starts when warmup ends: ratio = (step - warmup) / (decay_steps - "
                "warmup), which goes from 0 to 1 over the decay phase.")
    return ("between warmup and decay_steps: ratio = (step - warmup) / (decay_steps - warmup), "
            "coeff = 0.5 * (1 + cos(pi * ratio)), lr = min_lr + coeff * (max_lr - min_lr).")


@exercise("8.1", "warmup + cosine learning rate")
def check_get_lr(fn):
    """Check ``get_lr(step, max_lr, min_lr, warmup, decay_steps) -> float``.

    The rate of optimizer step ``step`` (0-based): ``max_lr * (step + 1) / (warmup + 1)``
    while ``step < warmup``; ``min_lr`` once ``step >= decay_steps``; in between a cosine from
    ``max_lr`` down to ``min_lr``. Compared with ``gptlab.schedule.lr_at`` at every step of
    several schedules, a few steps past ``decay_steps`` included.
    """
    cases = [(6e-4, 6e-5, 10, 100), (1e-3, 1e-4, 0, 50), (1.0, 0.0, 5, 20), (3e-3, 3e-3, 4, 12),
             (2e-3, 2e-4, 100, 1000)]
    for max_lr, min_lr, warmup, decay in cases:
        cfg = _schedule(max_lr, min_lr, warmup, decay)
        for step in range(decay + 5):
            args = f"get_lr({step}, max_lr={max_lr:g}, min_lr={min_lr:g}, warmup={warmup}, " \
                   f"decay_steps={decay})"
            got = call(fn, step, max_lr, min_lr, warmup, decay)
            value = _as_float(got)
            if value is None:
                fail(f"{args} should return a number (a Python float), got "
                     f"{type(got).__name__} ({short_repr(got)}).")
            expected = lr_at(step, cfg)
            if not math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-12):
                fail(f"{args}: expected {expected:.6g}, got {value:.6g}.\n"
                     + _lr_hint(step, value, max_lr, min_lr, warmup, decay))
    return f"matches gptlab.schedule.lr_at at every step of {len(cases)} schedules"


# ----------------------------------------------------------------------------- 8.2


def _grad_sets(g: torch.Generator) -> list[tuple[str, list[nn.Parameter], float]]:
    """(description, parameters with gradients, max_norm)."""

    def params(shapes: list[tuple[int, ...]], scale: float,
               no_grad: tuple[int, ...] = ()) -> list[nn.Parameter]:
        out = []
        for i, shape in enumerate(shapes):
            p = nn.Parameter(torch.randn(shape, generator=g))
            if i not in no_grad:
                p.grad = scale * torch.randn(shape, generator=g)
            out.append(p)
        return out

    return [
        ("3 parameters, total gradient norm above max_norm",
         params([(4, 3), (3,), (2, 5)], 2.0), 1.0),
        ("3 parameters, total gradient norm below max_norm",
         params([(4, 3), (3,), (2, 5)], 0.05), 1.0),
        ("a big gradient and a small one", params([(8, 8), (8,)], 3.0), 0.5),
        ("a parameter without a gradient (p.grad is None) among others",
         params([(3, 3), (5,), (2, 2)], 1.5, no_grad=(1,)), 2.0),
        ("one parameter", params([(6,)], 10.0), 5.0),
    ]


@exercise("8.2", "clip the global gradient norm")
def check_clip_grad_norm(fn):
    """Check ``clip_grad_norm(params, max_norm) -> total_norm``.

    ``params`` is a list of parameters; those whose ``.grad`` is None are skipped. The total
    norm is the L2 norm of all gradients together, ``sqrt(sum of g.norm()**2)``. If it is
    above ``max_norm`` every gradient is multiplied, in place, by
    ``max_norm / (total_norm + 1e-6)``; otherwise nothing changes. Returns the total norm
    *before* clipping (a float or a 0-d tensor). Compared with
    ``torch.nn.utils.clip_grad_norm_`` on random gradients.
    """
    g = torch.Generator().manual_seed(8)
    cases = _grad_sets(g)
    for what, params, max_norm in cases:
        weights = [p.detach().clone() for p in params]
        grads = [None if p.grad is None else p.grad.clone() for p in params]
        ref = [None if gr is None else gr.clone() for gr in grads]  # clipped by torch, below
        total = float(torch.nn.utils.clip_grad_norm_(
            [_with_grad(r) for r in ref if r is not None], max_norm))
        example = f"{what} (max_norm={max_norm:g})"
        got = call(fn, params, max_norm)
        after = [None if p.grad is None else p.grad.detach() for p in params]
        for p, w in zip(params, weights):
            expect_true(torch.equal(p.detach(), w), f"clip_grad_norm changed a parameter's "
                        f"values for {example}: only the gradients (p.grad) may change.")
        for i, (a, before) in enumerate(zip(after, grads)):
            if before is None:
                expect_true(a is None, f"for {example}: parameter {i} had no gradient (None) "
                            "and should keep none; skip parameters whose .grad is None.")
        if got is None:
            fail(f"clip_grad_norm returned None for {example}: return the total gradient norm "
                 f"(here {total:.6g}), measured before clipping.")
        value = _as_float(got)
        if value is None:
            fail(f"clip_grad_norm should return the total norm as a number or a 0-d tensor, "
                 f"got {type(got).__name__} ({short_repr(got)}) for {example}.")
        clipped = total > max_norm
        if clipped and math.isclose(value, max_norm, rel_tol=1e-4):
            fail(f"for {example}: the returned norm is {value:.6g}, the norm *after* clipping. "
                 f"Return the total norm measured before clipping ({total:.6g}): it is what "
                 "a training log shows, to see how often clipping kicks in.")
        expect_close(value, total, atol=1e-6, rtol=1e-5,
                     what="the returned total gradient norm", example=example)
        present = [(i, a, b, r) for i, (a, b, r) in enumerate(zip(after, grads, ref))
                   if b is not None]
        if clipped and all(torch.equal(a, b) for _, a, b, _ in present):
            fail(f"for {example}: the total norm {total:.4g} is above max_norm={max_norm:g}, but "
                 "the gradients did not change. Scale each p.grad in place: "
                 "p.grad.mul_(max_norm / (total_norm + 1e-6)).")
        if not clipped and not all(torch.equal(a, b) for _, a, b, _ in present):
            fail(f"for {example}: the total norm {total:.4g} is already below max_norm="
                 f"{max_norm:g}, so the gradients must stay as they are. Clipping only scales "
                 "down: coefficient min(1, max_norm / (total_norm + 1e-6)).")
        if clipped and len(present) > 1 and all(
                torch.allclose(a, b * min(1.0, max_norm / (b.norm().item() + 1e-6)), rtol=1e-4,
                               atol=1e-7) for _, a, b, _ in present):
            fail(f"for {example}: each gradient was clipped on its own. Use ONE norm over all "
                 "gradients together, sqrt(sum of p.grad.norm()**2), and the same factor "
                 "for every parameter, so the update keeps its direction.")
        for i, a, _, r in present:
            expect_close(a, r, atol=1e-6, rtol=1e-5, what=f"parameter {i}'s gradient after "
                         "clipping", example=example)
    return f"matches torch.nn.utils.clip_grad_norm_ on {len(cases)} sets of gradients"


def _with_grad(grad: Tensor) -> nn.Parameter:
    p = nn.Parameter(torch.zeros_like(grad))
    p.grad = grad  # the same tensor: clip_grad_norm_ scales it in place
    return p


# ----------------------------------------------------------------------------- 8.3


def _models() -> list[tuple[str, nn.Module]]:
    torch.manual_seed(0)
    tiny = {"vocab_size": 11, "block_size": 8, "n_layer": 2, "n_head": 2, "n_embd": 8}
    from gptlab.model import GPT

    frozen = GPT(GPTConfig(**tiny))
    for p in (*frozen.wte.parameters(), *frozen.h[0].parameters()):
        p.requires_grad_(False)
    return [
        ("a tiny GPT (its lm_head.weight is tied to wte.weight)", GPT(GPTConfig(**tiny))),
        ("a GPT with bias=False, RMSNorm and untied weights",
         GPT(GPTConfig(**tiny, bias=False, norm="rmsnorm", tie_weights=False))),
        ("a GPT with frozen token embedding and first block", frozen),
        ("nn.Sequential(Embedding, Linear, LayerNorm, Linear without bias)",
         nn.Sequential(nn.Embedding(7, 4), nn.Linear(4, 6), nn.LayerNorm(6),
                       nn.Linear(6, 3, bias=False))),
    ]


def _param_names(model: nn.Module) -> dict[int, str]:
    names: dict[int, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(p), []).append(name)
    return {k: " = ".join(v) for k, v in names.items()}


def _describe_params(ps: list[Tensor], names: dict[int, str], limit: int = 4) -> str:
    shown = [f"{names.get(id(p), '?')} {tuple(p.shape)}" for p in ps[:limit]]
    more = f" and {len(ps) - limit} more" if len(ps) > limit else ""
    return ", ".join(shown) + more


def _as_param_list(x: object, which: str, what: str) -> list[Tensor]:
    if isinstance(x, Tensor) or not hasattr(x, "__iter__"):
        fail(f"split_decay({what}): the {which} group should be a list of parameters, got "
             f"{type(x).__name__} ({short_repr(x)}).")
    items = list(x)  # type: ignore[call-overload]
    for item in items:
        if isinstance(item, str):
            fail(f"split_decay({what}): the {which} group holds names such as {item!r}; return "
                 "the parameters themselves (p in model.parameters(), or p from "
                 "model.named_parameters()).")
        expect_type(item, torch.Tensor, f"each item of the {which} group", what)
    return items


@exercise("8.3", "weight decay on matrices only")
def check_split_decay(fn: Callable[[nn.Module], tuple]):
    """Check ``split_decay(model) -> (decay, no_decay)``.

    Two lists that together hold every trainable parameter of ``model`` exactly once:
    ``decay`` the ones with 2 or more dimensions (weight matrices and embeddings),
    ``no_decay`` the 1-D ones (biases and norm gains). Parameters with
    ``requires_grad=False`` are left out; a tied weight (lm_head = wte) counts once. Compared
    with the groups of ``gptlab.schedule.configure_optimizer`` on several models.
    """
    models = _models()
    for what, model in models:
        names = _param_names(model)
        opt = configure_optimizer(model, SimpleNamespace(
            lr=1e-3, min_lr=None, warmup_steps=None, lr_decay_steps=None, max_steps=10,
            weight_decay=0.1, betas=(0.9, 0.95)))
        expected = {wd: {id(p) for g in opt.param_groups if g["weight_decay"] == wd
                         for p in g["params"]} for wd in (0.1, 0.0)}
        got = call(fn, model)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            fail(f"split_decay({what}) should return two lists, (decay, no_decay), got "
                 f"{type(got).__name__} ({short_repr(got)}).")
        decay = _as_param_list(got[0], "decay (first)", what)
        no_decay = _as_param_list(got[1], "no_decay (second)", what)
        every = decay + no_decay
        trainable = {id(p) for p in model.parameters() if p.requires_grad}
        by_id = {id(p): p for p in model.parameters()}
        if len({id(p) for p in every}) != len(every):
            seen: set[int] = set()
            twice = [p for p in every if id(p) in seen or seen.add(id(p))]  # type: ignore
            fail(f"split_decay({what}): {_describe_params(twice, names)} appear(s) more than "
                 "once. Each parameter belongs to exactly one group (a tied weight such as "
                 "lm_head.weight = wte.weight is one parameter: model.parameters() lists it "
                 "once).")
        foreign = [p for p in every if id(p) not in by_id]
        if foreign:
            fail(f"split_decay({what}): the groups hold {len(foreign)} tensor(s) that are not "
                 f"parameters of the model (e.g. shape {tuple(foreign[0].shape)}): return the "
                 "model's own parameters, not copies (.clone(), .detach(), .data).")
        frozen = [p for p in every if id(p) not in trainable]
        if frozen:
            fail(f"split_decay({what}): {_describe_params(frozen, names)} has "
                 "requires_grad=False (frozen): leave frozen parameters out, the optimizer "
                 "never updates them.")
        missing = [by_id[i] for i in trainable - {id(p) for p in every}]
        if missing:
            fail(f"split_decay({what}): {_describe_params(missing, names)} is in neither group."
                 " Every trainable parameter must be in one of them.")
        wrong_decay = [p for p in decay if id(p) not in expected[0.1]]
        if wrong_decay:
            fail(f"split_decay({what}): {_describe_params(wrong_decay, names)} should not be "
                 "decayed: 1-D parameters (biases, norm gains) go to no_decay. Shrinking a "
                 "LayerNorm gain or a bias towards 0 only hurts.")
        wrong_no = [p for p in no_decay if id(p) not in expected[0.0]]
        if wrong_no:
            fail(f"split_decay({what}): {_describe_params(wrong_no, names)} should be decayed: "
                 "every parameter with 2 or more dimensions (p.dim() >= 2: weight matrices "
                 "and embeddings) goes to decay.")
    return f"same groups as gptlab.schedule.configure_optimizer on {len(models)} models"
