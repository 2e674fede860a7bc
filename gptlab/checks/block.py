"""Checkers for lesson 06 (transformer block): layer norm, GELU (tanh form), the pre-norm block.

The expected answers are computed here from the formulas with basic tensor operations (in
float64 where it matters), not with ``gptlab.model``, so each checker states exactly the
behaviour it asks for. Known wrong answers (unbiased variance, the exact GELU, a post-norm
block, ...) are recognised and explained.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gptlab.attention import CausalSelfAttention
from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)

__all__ = ["check_block_forward", "check_gelu_tanh", "check_layer_norm"]


def _close(a: Tensor, b: Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.detach().double(), b.detach().double(),
                                                 atol=atol, rtol=rtol)


# ----------------------------------------------------------------------------- 6.1


def _layer_norm(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float, *,
                unbiased: bool = False, eps_outside: bool = False, dim: int | None = -1) -> Tensor:
    """The reference in float64 (``dim=None``: over the whole tensor), and wrong variants."""
    xd = x.double()
    dims = tuple(range(xd.dim())) if dim is None else (dim,)
    mean = xd.mean(dim=dims, keepdim=True)
    var = xd.var(dim=dims, keepdim=True, correction=1 if unbiased else 0)
    y = (xd - mean) / (var.sqrt() + eps) if eps_outside else (xd - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * weight.double()
    if bias is not None:
        y = y + bias.double()
    return y


def _layer_norm_cases() -> list[tuple[Tensor, Tensor, Tensor | None, float, str]]:
    """(x, weight, bias, eps, description): from one vector to a (B, T, C) batch."""
    g = torch.Generator().manual_seed(61)

    def rnd(*shape: int, scale: float = 1.0, shift: float = 0.0) -> Tensor:
        return torch.randn(*shape, generator=g) * scale + shift

    cases = [
        (torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(4), torch.zeros(4), 1e-5,
         "x = [1, 2, 3, 4], weight 1, bias 0"),
        (rnd(3, 5, scale=3, shift=2), rnd(5), rnd(5), 1e-5, "x of shape (3, 5)"),
        (rnd(2, 4, 8), rnd(8), rnd(8), 1e-5, "x of shape (2, 4, 8)"),
        (rnd(2, 3, 16, scale=0.1, shift=5), rnd(16), None, 1e-5,
         "x of shape (2, 3, 16) with bias=None"),
        (rnd(4, 6, scale=0.2), rnd(6), rnd(6), 0.1, "x of shape (4, 6) with eps=0.1"),
    ]
    constant = rnd(3, 4)
    constant[1] = 7.0  # a row with zero variance: the output must be the bias, not NaN
    cases.append((constant, rnd(4), rnd(4), 1e-5, "x of shape (3, 4) whose row 1 is constant"))
    return cases


@exercise("6.1", "layer normalization")
def check_layer_norm(fn):
    """Check ``layer_norm(x, weight, bias, eps=1e-5) -> Tensor``.

    ``x`` has shape (..., C); ``weight`` and ``bias`` have shape (C,), and ``bias`` may be
    ``None`` (no bias). Each vector along the last dimension is normalised on its own: its
    mean is subtracted and it is divided by ``sqrt(var + eps)``, where ``var`` is the biased
    variance (the mean of squared deviations, dividing by C as ``nn.LayerNorm`` does); then
    multiplied by ``weight`` and shifted by ``bias``. ``x`` is not modified. Compared with a
    float64 reference on six inputs, including a row with zero variance and ``eps=0.1``.
    """
    cases = _layer_norm_cases()
    for x, w, b, eps, example in cases:
        before = x.clone()
        got = call(fn, x, w.clone(), None if b is None else b.clone(), eps=eps)
        expect_type(got, torch.Tensor, "layer_norm(x, weight, bias)", example)
        expect_shape(got, x.shape, "layer_norm(x, weight, bias) (same shape as x)", example)
        expect_true(torch.equal(x, before), "layer_norm changed its input x in place; compute "
                    "a new tensor instead (avoid x -= ..., x /= ... and similar).")
        expected = _layer_norm(x, w, b, eps)
        if _close(got, expected):
            continue
        if torch.isnan(got).any():
            fail(f"got NaN for {example}. A row whose values are all equal has variance 0: "
                 "add eps to the variance *inside* the square root, sqrt(var + eps), so you "
                 "never divide by zero.")
        C = x.shape[-1]
        if eps != 1e-5 and _close(got, _layer_norm(x, w, b, 1e-5)):
            fail(f"the eps argument was ignored (for {example}): use the eps passed in, not a "
                 "fixed 1e-5.")
        if _close(got, _layer_norm(x, w, b, 0.0)):
            fail(f"eps is missing (for {example}): divide by sqrt(var + eps), not sqrt(var). "
                 "eps keeps the division safe when a vector's variance is (nearly) 0.")
        if _close(got, _layer_norm(x, w, b, eps, unbiased=True)):
            fail(f"the variance divides by C - 1 = {C - 1} instead of C = {C} (for {example}). "
                 "torch.var uses C - 1 unless told otherwise; layer norm uses the plain mean of "
                 "squared deviations: x.var(dim=-1, keepdim=True, unbiased=False), or "
                 "((x - mean) ** 2).mean(dim=-1, keepdim=True).")
        if _close(got, _layer_norm(x, w, b, eps, eps_outside=True)):
            fail(f"eps was added to the standard deviation, outside the square root (for "
                 f"{example}); add it to the variance: (x - mean) / sqrt(var + eps).")
        if x.dim() > 1 and (_close(got, _layer_norm(x, w, b, eps, dim=None))
                            or _close(got, _layer_norm(x, w, b, eps, dim=0))):
            fail(f"the mean and variance were taken over the wrong dimension (for {example}). "
                 "Layer norm normalises each vector of C features on its own: reduce over the "
                 "last dimension only, dim=-1 with keepdim=True.")
        if _close(got, _layer_norm(x, None, None, eps)):
            fail(f"weight and bias were not applied (for {example}): after normalising, "
                 "multiply by weight and add bias (when bias is not None).")
        if b is not None and _close(got, _layer_norm(x, w, None, eps)):
            fail(f"the bias was not added (for {example}): return normalized * weight + bias.")
        if _close(got, _layer_norm(x, None, b, eps)):
            fail(f"the weight (gain) was not applied (for {example}): multiply the normalised "
                 "x by weight before adding bias.")
        expect_close(got, expected.float(), atol=1e-5, rtol=1e-4,
                     what="layer_norm(x, weight, bias)", example=example)
    return (f"matches the formula on {len(cases)} inputs, including bias=None, eps=0.1 and a "
            "constant row")


# ----------------------------------------------------------------------------- 6.2

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def _gelu_tanh(x: Tensor) -> Tensor:
    xd = x.double()
    return 0.5 * xd * (1.0 + torch.tanh(_SQRT_2_OVER_PI * (xd + 0.044715 * xd.pow(3))))


def _gelu_exact(x: Tensor) -> Tensor:
    xd = x.double()
    return 0.5 * xd * (1.0 + torch.erf(xd / math.sqrt(2.0)))


@exercise("6.2", "GELU, tanh approximation")
def check_gelu_tanh(fn):
    """Check ``gelu_tanh(x: Tensor) -> Tensor``.

    Element-wise ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))``, the tanh
    approximation of GELU that GPT-2 uses (``F.gelu(x, approximate="tanh")``), for a float
    tensor of any shape; ``x`` is not modified. Compared with a float64 reference on
    [-8, 8] and on random (B, T, C) inputs, closely enough to tell it from the exact
    (erf) GELU, which differs from it by up to 5e-4.
    """
    g = torch.Generator().manual_seed(62)
    cases = [
        (torch.tensor([0.0, 1.0, -1.0]), "x = [0, 1, -1]"),
        (torch.linspace(-8.0, 8.0, 161), "x = torch.linspace(-8, 8, 161)"),
        (torch.randn(2, 5, 8, generator=g) * 3, "x of shape (2, 5, 8)"),
        (torch.tensor([[-30.0, -10.0], [10.0, 30.0]]), "x with large values (+-10, +-30)"),
    ]
    for x, example in cases:
        before = x.clone()
        got = call(fn, x)
        expect_type(got, torch.Tensor, "gelu_tanh(x)", example)
        expect_shape(got, x.shape, "gelu_tanh(x) (same shape as x)", example)
        expect_true(torch.equal(x, before), "gelu_tanh changed its input x in place; compute a "
                    "new tensor instead.")
        expected = _gelu_tanh(x)
        if _close(got, expected, atol=1e-5, rtol=1e-5):
            continue
        if torch.isnan(got).any():
            fail(f"got NaN for {example}; the formula needs only x, x**3 and torch.tanh, which "
                 "are finite for these inputs.")
        if _close(got, _gelu_exact(x), atol=1e-5, rtol=1e-5):
            fail(f"this is the exact GELU, x * Phi(x) with erf (for {example}). It is close, "
                 "but the exercise asks for GPT-2's tanh approximation: "
                 "0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))). The two differ "
                 "by up to 5e-4 near x = +-2.7, enough to change a model's outputs slightly.")
        if _close(got, x.clamp(min=0)):
            fail(f"this is ReLU, max(0, x) (for {example}); GELU is smooth and slightly negative "
                 "for negative x: 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3))).")
        if _close(got, 2 * expected):
            fail(f"the result is twice too big (for {example}): don't forget the factor 0.5.")
        fail(f"gelu_tanh(x) does not match 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 "
             f"* x**3))) for {example}: largest difference "
             f"{(got.detach().double() - expected).abs().max().item():.3g}. Check the constants "
             f"(sqrt(2 / pi) = {_SQRT_2_OVER_PI:.6f}, 0.044715) and the cube x**3.")
    return "matches GPT-2's tanh GELU on [-8, 8] and on random inputs"


# ----------------------------------------------------------------------------- 6.3


def _block_parts(C: int, n_head: int, seed: int) -> tuple[nn.Module, ...]:
    """Two layer norms with different random gains and biases, attention and an MLP, with
    weights large enough that every sub-layer visibly changes its input."""
    from gptlab.model import MLP, LayerNorm

    torch.manual_seed(seed)
    ln_1, ln_2 = LayerNorm(C), LayerNorm(C)
    attn = CausalSelfAttention(C, n_head, block_size=16)
    mlp = MLP(C)
    with torch.no_grad():
        for ln in (ln_1, ln_2):
            ln.weight.copy_(1 + 0.5 * torch.randn(C))
            ln.bias.copy_(0.5 * torch.randn(C))
    for m in (ln_1, attn, ln_2, mlp):
        m.eval()
    return ln_1, attn, ln_2, mlp


def _wirings(x: Tensor, ln_1, attn, ln_2, mlp) -> dict[str, Tensor]:
    """The pre-norm block ("right") and the usual wrong wirings, with the same modules."""
    h = x + attn(ln_1(x))
    out = {"right": h + mlp(ln_2(h))}
    p = ln_1(x + attn(x))
    out["post-norm"] = ln_2(p + mlp(p))
    out["no residual"] = mlp(ln_2(attn(ln_1(x))))
    out["parallel"] = x + attn(ln_1(x)) + mlp(ln_2(x))
    h2 = x + attn(x)
    out["no norms"] = h2 + mlp(h2)
    h3 = x + attn(ln_2(x))
    out["swapped norms"] = h3 + mlp(ln_1(h3))
    h4 = x + mlp(ln_2(x))
    out["mlp first"] = h4 + attn(ln_1(h4))
    out["no mlp"] = h
    out["no attention"] = x + mlp(ln_2(x))
    return out


_WRONG = {
    "post-norm": "this is the post-norm block of the original Transformer, "
                 "ln(x + sublayer(x)). GPT-2 normalises the *input* of each sub-layer and adds "
                 "the result to the un-normalised stream: x = x + attn(ln_1(x)).",
    "no residual": "the residual connections are missing: each sub-layer's output replaced x "
                   "instead of being added to it. Write x = x + attn(ln_1(x)), then "
                   "x = x + mlp(ln_2(x)).",
    "parallel": "the MLP read the block's input, not the stream after attention (this is the "
                "'parallel' block of GPT-J). First x = x + attn(ln_1(x)), then feed that new x "
                "to mlp(ln_2(x)).",
    "no norms": "the layer norms were not applied: each sub-layer reads a normalised copy of "
                "the stream, attn(ln_1(x)) and mlp(ln_2(x)).",
    "swapped norms": "ln_1 and ln_2 were swapped: ln_1 goes before attention, ln_2 before the "
                     "MLP.",
    "mlp first": "the MLP ran before attention: attention comes first (tokens talk), then the "
                 "MLP (each token thinks on its own).",
    "no mlp": "the MLP part is missing: after x = x + attn(ln_1(x)) add x = x + mlp(ln_2(x)).",
    "no attention": "the attention part is missing: start with x = x + attn(ln_1(x)).",
}


@exercise("6.3", "the pre-norm block forward")
def check_block_forward(fn):
    """Check ``block_forward(x, ln_1, attn, ln_2, mlp) -> Tensor``.

    ``x`` has shape (B, T, C); ``ln_1``, ``attn``, ``ln_2`` and ``mlp`` are modules that map
    (B, T, C) to (B, T, C). The result is GPT-2's pre-norm block: ``x + attn(ln_1(x))``,
    then that plus ``mlp(ln_2(...))`` of itself. ``x`` is not modified. Compared, with the
    same modules, on three shapes; post-norm, missing residuals, a parallel block and
    swapped norms are recognised.
    """
    cases = [((1, 1, 8), 2), ((2, 5, 8), 2), ((3, 7, 16), 4)]
    for i, (shape, n_head) in enumerate(cases):
        parts = _block_parts(shape[-1], n_head, seed=630 + i)
        x = torch.randn(shape, generator=torch.Generator().manual_seed(63 + i))
        example = f"x of shape {shape}"
        before = x.clone()
        with torch.no_grad():
            got = call(fn, x, *parts)
            expect_true(torch.equal(x, before), f"block_forward changed its input x in place "
                        f"(for {example}). `x += ...` writes into the caller's tensor; write "
                        "`x = x + ...` to make a new one.")
            expect_type(got, torch.Tensor, "block_forward(x, ln_1, attn, ln_2, mlp)", example)
            expect_shape(got, shape, "block_forward(...) (same shape as x)", example)
            wirings = _wirings(x, *parts)
        if _close(got, wirings["right"]):
            continue
        for name, why in _WRONG.items():
            if _close(got, wirings[name]):
                fail(f"{why} (for {example})")
        expect_close(got, wirings["right"], atol=1e-5, rtol=1e-4,
                     what="block_forward(x, ln_1, attn, ln_2, mlp)", example=example)
    return "x + attn(ln_1(x)), then + mlp(ln_2(x)), on 3 shapes"
