"""Checkers for lesson 11 (fine-tuning): freezing the bottom of a GPT, the LoRA forward pass,
and merging LoRA adapters into the base weight.

Each compares the learner's function with the library: ``gptlab.finetune.freeze`` (which
parameters still learn), and ``gptlab.finetune.LoRALinear`` (its forward and its
``delta_weight``, what ``merge_lora`` adds to the base weight).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from gptlab.checks.core import (
    LearnerError,
    call,
    exercise,
    expect_close,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)
from gptlab.config import GPTConfig
from gptlab.finetune import LoRALinear, freeze

__all__ = ["check_freeze_bottom", "check_lora_forward", "check_merge_weight"]


# ----------------------------------------------------------------------------- 11.1


def _freeze_cases() -> list[tuple[str, GPTConfig, int]]:
    tiny = {"vocab_size": 13, "block_size": 8, "n_layer": 3, "n_head": 2, "n_embd": 8}
    return [
        ("a 3-block GPT (lm_head tied to wte)", GPTConfig(**tiny), 1),
        ("a 3-block GPT (lm_head tied to wte)", GPTConfig(**tiny), 2),
        ("a 3-block GPT (lm_head tied to wte)", GPTConfig(**tiny), 3),
        ("a 4-block GPT with an untied lm_head", GPTConfig(**{**tiny, "n_layer": 4},
                                                           tie_weights=False), 2),
        ("a 3-block GPT with rotary positions (model.wpe is None)",
         GPTConfig(**tiny, positional="rope"), 1),
    ]


def _flags(model: nn.Module) -> dict[str, bool]:
    """requires_grad of every parameter name (a tied weight under both its names)."""
    return {n: p.requires_grad for n, p in model.named_parameters(remove_duplicate=False)}


def _names(names: list[str], limit: int = 6) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _block(name: str) -> int | None:
    parts = name.split(".")
    return int(parts[1]) if parts[0] == "h" and len(parts) > 1 and parts[1].isdigit() else None


def _freeze_hint(wrong_frozen: list[str], still_trainable: list[str], k: int,
                 n_layer: int) -> str:
    """Why the flags are wrong: the usual slips, recognised by which names are off."""
    if still_trainable and all(n.startswith(("wte.", "wpe.", "lm_head.")) for n in still_trainable):
        return ("the embeddings are the bottom of the network, below block 0: freeze the token "
                "embedding model.wte and the position embedding model.wpe too (when the model "
                "has one). lm_head.weight is the same tensor as wte.weight here, so it is frozen "
                "with it.")
    blocks_frozen = {b for n in wrong_frozen if (b := _block(n)) is not None}
    if blocks_frozen and min(blocks_frozen) >= n_layer - k:
        return (f"you froze the top blocks. 'The lower layers' are model.h[0] ... "
                f"model.h[{k - 1}] (block 0 is nearest the input), the top ones are the last "
                "in model.h.")
    if blocks_frozen == {k}:
        return f"one block too many: n_layers={k} means blocks 0 to {k - 1} (range({k}))."
    missing = {b for n in still_trainable if (b := _block(n)) is not None}
    if missing == {k - 1}:
        return f"one block too few: n_layers={k} means blocks 0 to {k - 1} (range({k}))."
    if any(n.startswith(("ln_f.", "lm_head.")) for n in wrong_frozen):
        return ("ln_f and lm_head are at the top of the network (after the last block): they "
                "stay trainable.")
    return ("freeze exactly model.wte, model.wpe (if not None) and model.h[0] ... "
            f"model.h[{k - 1}]: p.requires_grad_(False) for every parameter p of each.")


@exercise("11.1", "freeze the embeddings and the lower blocks")
def check_freeze_bottom(fn):
    """Check ``freeze_bottom(model, n_layers) -> None``.

    On a GPT whose parameters all learn, the learner's function sets ``requires_grad=False``
    on the token embedding ``wte``, the position embedding ``wpe`` (when the model has one)
    and the blocks ``model.h[0]`` .. ``model.h[n_layers - 1]``, and leaves every other
    parameter trainable, its values unchanged. Compared with
    ``gptlab.finetune.freeze(model, layers=n_layers)`` on several small GPTs.
    """
    from gptlab.model import GPT

    cases = _freeze_cases()
    for what, cfg, k in cases:
        torch.manual_seed(0)
        model = GPT(cfg)
        reference = copy.deepcopy(model)
        freeze(reference, layers=k)
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        example = f"{what}, n_layers={k}"
        try:
            fn(model, k)
        except NotImplementedError:
            raise
        except AttributeError as exc:
            if cfg.positional == "rope" and "NoneType" in str(exc):
                fail(f"freeze_bottom raised AttributeError ({exc}) for {example}. A model with "
                     "rotary positions has no position table: model.wpe is None. Skip what is "
                     "None, e.g. `for m in [model.wte, model.wpe, *model.h[:n_layers]]: "
                     "if m is not None: ...`.")
            raise LearnerError(exc, example) from exc
        except Exception as exc:
            raise LearnerError(exc, example) from exc
        for n, p in model.named_parameters():
            expect_true(torch.equal(p.detach(), before[n]), f"freeze_bottom changed the values "
                        f"of {n} for {example}: only requires_grad should change.")
        got, expected = _flags(model), _flags(reference)
        if all(got.values()):
            fail(f"no parameter was frozen for {example}: every one still has "
                 "requires_grad=True. Set it on the parameters: p.requires_grad_(False) for p "
                 "in module.parameters(), or module.requires_grad_(False) (with the "
                 "underscore and parentheses: `module.requires_grad = False` only sets a new "
                 "attribute on the module and freezes nothing).")
        wrong_frozen = [n for n, v in got.items() if expected[n] and not v]
        still_trainable = [n for n, v in got.items() if not expected[n] and v]
        if wrong_frozen or still_trainable:
            lines = [f"for {example} the wrong parameters are frozen."]
            if still_trainable:
                lines.append(f"  should be frozen but still learn: {_names(still_trainable)}")
            if wrong_frozen:
                lines.append(f"  should learn but are frozen: {_names(wrong_frozen)}")
            lines.append(_freeze_hint(wrong_frozen, still_trainable, k, cfg.n_layer))
            fail("\n".join(lines))
    return (f"the same parameters learn as after gptlab.finetune.freeze(model, layers=k) on "
            f"{len(cases)} models")


# ----------------------------------------------------------------------------- 11.2 / 11.3


def _lora_cases(g: torch.Generator) -> list[tuple[str, dict]]:
    """(description, {x, weight, bias, A, B, alpha}) with a non-zero B (a trained adapter)."""

    def case(shape_x: tuple[int, ...], n_in: int, n_out: int, rank: int, alpha: float,
             bias: bool = True, b_zero: bool = False) -> dict:
        return {"x": torch.randn(*shape_x, n_in, generator=g),
                "weight": torch.randn(n_out, n_in, generator=g),
                "bias": torch.randn(n_out, generator=g) if bias else None,
                "A": torch.randn(rank, n_in, generator=g) / n_in ** 0.5,
                "B": torch.zeros(n_out, rank) if b_zero else torch.randn(n_out, rank, generator=g),
                "alpha": alpha}

    return [
        ("x (5, 6), weight (4, 6), rank 2, alpha 8", case((5,), 6, 4, 2, 8.0)),
        ("x (2, 3, 6) (a batch of sequences), weight (9, 6), rank 3, alpha 6",
         case((2, 3), 6, 9, 3, 6.0)),
        ("bias=None, rank 1, alpha 1", case((4,), 5, 3, 1, 1.0, bias=False)),
        ("rank 4, alpha 16, x (3, 8), weight (8, 8)", case((3,), 8, 8, 4, 16.0)),
        ("B = 0 (a fresh adapter), rank 2, alpha 4", case((2,), 6, 5, 2, 4.0, b_zero=True)),
    ]


def _reference_layer(c: dict) -> LoRALinear:
    """gptlab's LoRALinear holding exactly these tensors."""
    W, b, A, B = c["weight"], c["bias"], c["A"], c["B"]
    base = nn.Linear(W.shape[1], W.shape[0], bias=b is not None)
    with torch.no_grad():
        base.weight.copy_(W)
        if b is not None:
            base.bias.copy_(b)
    layer = LoRALinear(base, rank=A.shape[0], alpha=c["alpha"])
    with torch.no_grad():
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)
    return layer


def _inputs(c: dict, grad: bool = False) -> dict:
    """Fresh copies of a case's tensors; A and B with requires_grad when ``grad``."""
    out = {k: v.clone() if isinstance(v, Tensor) else v for k, v in c.items()}
    if grad:
        out["A"].requires_grad_(True)
        out["B"].requires_grad_(True)
    return out


def _same(a: Tensor, b: Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach(), b.detach(), atol=1e-5, rtol=1e-4)


@exercise("11.2", "the LoRA forward pass")
def check_lora_forward(fn):
    """Check ``lora_forward(x, weight, bias, A, B, alpha) -> Tensor``.

    ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,) or None, ``A`` (rank, in), ``B``
    (out, rank): returns ``x @ weight.T + bias + (alpha / rank) * (x @ A.T) @ B.T`` of shape
    (..., out), with rank = A.shape[0], without changing any input, and so that gradients
    reach A and B. Compared with ``gptlab.finetune.LoRALinear`` holding the same tensors.
    """
    cases = _lora_cases(torch.Generator().manual_seed(11))
    for what, c in cases:
        x, W, b, A, B, alpha = (c[k] for k in ("x", "weight", "bias", "A", "B", "alpha"))
        with torch.no_grad():
            expected = _reference_layer(c)(x)
        args = _inputs(c, grad=True)
        got = call(fn, args["x"], args["weight"], args["bias"], args["A"], args["B"], alpha)
        expect_type(got, torch.Tensor, "lora_forward(...)", what)
        for k in ("x", "weight", "bias", "A", "B"):
            if c[k] is not None:
                expect_true(torch.equal(args[k].detach(), c[k]), f"lora_forward changed its "
                            f"input {k} in place ({what}): compute a new tensor instead.")
        expect_shape(got, expected.shape, "lora_forward(...)", what)
        rank = A.shape[0]
        base = x @ W.T + (b if b is not None else 0)
        update = (x @ A.T) @ B.T
        if B.abs().sum() > 0:
            if _same(got, base):
                fail(f"for {what}: the output is the base layer's alone, x @ weight.T + bias. "
                     "Add the low-rank update (alpha / rank) * (x @ A.T) @ B.T.")
            slips = [(base + update, "the update is not scaled: multiply it by alpha / rank"),
                     (base + alpha * update,
                      "the scale is alpha / rank, not alpha (rank = A.shape[0])"),
                     (base + rank / alpha * update, "the scale is alpha / rank, not rank / alpha")]
            if b is not None:
                slips.append((x @ W.T + alpha / rank * update,
                              "the bias is missing: x @ weight.T + bias + ... (if not None)"))
            for value, hint in slips:
                if not torch.allclose(value, expected, atol=1e-5) and _same(got, value):
                    fail(f"for {what}: {hint}.")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="lora_forward(...)",
                     example=what)
        if B.abs().sum() > 0:
            expect_true(got.requires_grad, f"no gradient reached A or B ({what}): the output "
                        "does not depend on them through autograd. Use A and B directly, "
                        "without .detach(), .data or torch.no_grad(): they are what LoRA trains.")
            got.sum().backward()
            for k in ("A", "B"):
                grad = args[k].grad
                expect_true(grad is not None and grad.abs().sum() > 0, f"no gradient reached "
                            f"{k} ({what}): use A and B directly, without .detach(), .data or "
                            "torch.no_grad(): they are what LoRA trains.")
    return f"matches gptlab.finetune.LoRALinear on {len(cases)} inputs, gradients included"


@exercise("11.3", "merge the adapter into the weight")
def check_merge_weight(fn):
    """Check ``merge_weight(weight, A, B, alpha) -> Tensor``.

    ``weight`` (out, in), ``A`` (rank, in), ``B`` (out, rank): returns the merged weight
    ``weight + (alpha / rank) * B @ A``, shape (out, in), as a new tensor (``weight`` is not
    changed). Compared with ``weight + LoRALinear.delta_weight()`` (what ``merge_lora``
    adds), and the merged plain layer must give the LoRA layer's outputs.
    """
    cases = _lora_cases(torch.Generator().manual_seed(12))
    for what, c in cases:
        W, A, B, alpha = c["weight"], c["A"], c["B"], c["alpha"]
        layer = _reference_layer(c)
        with torch.no_grad():
            expected = W + layer.delta_weight()
        args = _inputs(c)
        got = call(fn, args["weight"], args["A"], args["B"], alpha)
        expect_type(got, torch.Tensor, "merge_weight(...)", what)
        for k in ("weight", "A", "B"):
            if not torch.equal(args[k], c[k]):
                fail(f"merge_weight changed its input {k} in place ({what}). Return a new "
                     "tensor, weight + ...: here the caller keeps the base weight. (gptlab's "
                     "merge_lora does add in place, on purpose: the model's own weight "
                     "becomes the merged one.)")
        if tuple(got.shape) == tuple(W.shape[::-1]) and W.shape[0] != W.shape[1]:
            fail(f"merge_weight returned shape {tuple(got.shape)} for {what}: the transpose. "
                 f"A weight is (out, in) = {tuple(W.shape)}, and so is B @ A: (out, rank) @ "
                 "(rank, in).")
        expect_shape(got, W.shape, "merge_weight(...) (the same shape as weight)", what)
        rank = A.shape[0]
        delta = B @ A
        if B.abs().sum() > 0:
            slips = [(alpha / rank * delta, ("you returned only the update: add it to the "
                                             "base weight, weight + (alpha / rank) * B @ A")),
                     (W + delta, "the update is not scaled: weight + (alpha / rank) * B @ A"),
                     (W + alpha * delta,
                      "the scale is alpha / rank, not alpha (rank = A.shape[0])"),
                     (W + rank / alpha * delta, "the scale is alpha / rank, not rank / alpha")]
            for value, hint in slips:
                if not torch.allclose(value, expected, atol=1e-5) and _same(got, value):
                    fail(f"for {what}: {hint}.")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="merge_weight(...)",
                     example=what)
        x, b = c["x"], c["bias"]
        with torch.no_grad():
            merged_out = torch.nn.functional.linear(x, got.detach(), b)
            expect_close(merged_out, layer(x), atol=1e-4, rtol=1e-4,
                         what="a plain linear layer with the merged weight vs the LoRA layer",
                         example=what)
    return (f"matches weight + LoRALinear.delta_weight() on {len(cases)} adapters; the merged "
            "layer computes what the LoRA layer did")
