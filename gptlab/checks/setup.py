"""Checkers for lesson 00 (setup): PyTorch basics — broadcasting, autograd, nn.Module."""

from __future__ import annotations

import torch
from torch import nn

from gptlab.checks.core import (
    call,
    exercise,
    expect_close,
    expect_equal,
    expect_shape,
    expect_true,
    expect_type,
    fail,
)

__all__ = ["check_linear_layer", "check_mse_gradient", "check_softmax"]


def _softmax_inputs() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    masked = torch.randn(3, 4, generator=g)
    masked[0, 1:] = float("-inf")  # a causal mask row: only the first position is allowed
    masked[1, 3] = float("-inf")
    return [
        torch.tensor([1.0, 2.0, 3.0]),
        torch.tensor([[0.0, 0.0], [1.0, -1.0]]),
        torch.randn(2, 3, 5, generator=g),
        torch.tensor([1000.0, 1001.0, 1002.0]),  # exp(1000) overflows float32
        torch.tensor([[-1000.0, -1001.0], [50.0, -50.0]]),  # exp(-1000) underflows to 0
        masked,
    ]


@exercise("0.1", "softmax over the last dimension")
def check_softmax(fn):
    """Check ``softmax(x: Tensor) -> Tensor``.

    The learner's function returns ``exp(x)`` normalised over the last dimension, for a
    float tensor of any number of dimensions, without changing ``x``. It must be numerically
    stable (subtract the row maximum before ``exp``) and handle ``-inf`` entries (masked
    positions get probability 0). Compared with ``torch.softmax(x, dim=-1)``.
    """
    cases = _softmax_inputs()
    for x in cases:
        before = x.clone()
        got = call(fn, x)
        expect_type(got, torch.Tensor, "softmax(x)", x)
        expect_shape(got, x.shape, "softmax(x)", x)
        expect_true(torch.equal(x, before), f"softmax changed its input x in place ({x.shape}); "
                    "compute a new tensor instead (avoid x -= ..., x.exp_() and similar)")
        expected = torch.softmax(x, dim=-1)
        if torch.isnan(got).any() and x.abs().max() > 80 and x.isfinite().all():
            fail(f"softmax(x) gave NaN for input {x.tolist()}: exp() of a large number "
                 "overflows to inf, and inf/inf is NaN. Subtract the maximum of each row "
                 "(x.max(dim=-1, keepdim=True).values) before exp(): the result is the same "
                 "and nothing overflows.")
        try:
            expect_close(got, expected, atol=1e-6, rtol=1e-5, what="softmax(x)", example=x)
        except AssertionError:
            sums = got.sum(dim=-1)
            if torch.allclose(sums, torch.ones_like(sums), atol=1e-4):
                raise
            fail(f"softmax(x): each row should sum to 1 along the last dimension, got sums "
                 f"{sums.flatten()[:6].tolist()} for an input of shape {tuple(x.shape)}. "
                 "Normalise over dim=-1 with keepdim=True so the division broadcasts.")
    return f"matches torch.softmax on {len(cases)} inputs, including huge values and -inf"


def _mse_reference(w, x, y):
    w = w.detach().clone().requires_grad_(True)
    loss = ((x @ w - y) ** 2).mean()
    loss.backward()
    return w.grad


@exercise("0.2", "gradient of the mean squared error")
def check_mse_gradient(fn):
    """Check ``mse_gradient(w: Tensor, x: Tensor, y: Tensor) -> Tensor``.

    With ``x`` of shape (N, D), ``w`` of shape (D,) and ``y`` of shape (N,), the learner's
    function returns the gradient of ``loss(w) = ((x @ w - y) ** 2).mean()`` with respect to
    ``w``, a tensor of shape (D,): by hand (``2 / N * x.T @ (x @ w - y)``) or with autograd.
    Compared with autograd on several sizes.
    """
    g = torch.Generator().manual_seed(1)
    sizes = [(4, 3), (10, 2), (1, 1), (7, 5)]
    for n, d in sizes:
        x = torch.randn(n, d, generator=g)
        w = torch.randn(d, generator=g)
        y = torch.randn(n, generator=g)
        expected = _mse_reference(w, x, y)
        got = call(fn, w.clone(), x.clone(), y.clone())
        example = f"w shape {tuple(w.shape)}, x shape {tuple(x.shape)}, y shape {tuple(y.shape)}"
        expect_type(got, torch.Tensor, "the gradient", example)
        expect_shape(got, w.shape, "the gradient (one number per weight)", example)
        got = got.detach()
        if n > 1 and torch.allclose(got, expected * n, atol=1e-4, rtol=1e-4):
            fail(f"the gradient is {n} times too big for N={n} examples: the loss is a mean, "
                 "so divide by N.")
        if torch.allclose(got, expected / 2, atol=1e-4, rtol=1e-4):
            fail("the gradient is half the right size: d/dw of (error)^2 is 2 * error * "
                 "d(error)/dw — don't forget the 2.")
        if torch.allclose(got, -expected, atol=1e-4, rtol=1e-4):
            fail("the gradient has the wrong sign: the error is (x @ w - y), and the gradient "
                 "points uphill (towards larger loss).")
        expect_close(got, expected, atol=1e-5, rtol=1e-4, what="the gradient", example=example)
    return f"matches autograd on {len(sizes)} problem sizes"


@exercise("0.3", "a linear layer as an nn.Module")
def check_linear_layer(cls):
    """Check ``class Linear(nn.Module)`` with ``Linear(in_features, out_features, bias=True)``.

    The learner's class stores ``self.weight``, an ``nn.Parameter`` of shape
    (out_features, in_features), and ``self.bias``, an ``nn.Parameter`` of shape
    (out_features,) or ``None`` when ``bias=False``; ``forward(x)`` returns
    ``x @ weight.T + bias`` for ``x`` of shape (..., in_features). Checked: it is an
    nn.Module, the parameters are registered (so an optimizer sees them), the output matches
    ``torch.nn.functional.linear`` for 1-D, 2-D and 3-D inputs, and gradients reach both
    parameters.
    """
    torch.manual_seed(2)
    layer = call(cls, 3, 4)
    expect_type(layer, nn.Module, "Linear(3, 4)")
    for name, shape in (("weight", (4, 3)), ("bias", (4,))):
        p = getattr(layer, name, None)
        if not isinstance(p, nn.Parameter):
            fail(f"Linear(3, 4).{name} should be an nn.Parameter of shape {shape}, got "
                 f"{type(p).__name__}. Wrap the tensor: self.{name} = nn.Parameter(...)")
        expect_shape(p, shape, f"Linear(3, 4).{name}")
    names = sorted(n for n, _ in layer.named_parameters())
    expect_equal(names, ["bias", "weight"], "the layer's registered parameter names",
                 "Linear(3, 4)")
    with torch.no_grad():  # make sure the check does not depend on the initialization
        layer.weight.copy_(torch.randn(4, 3))
        layer.bias.copy_(torch.randn(4))
    for shape in ((3,), (5, 3), (2, 6, 3)):
        x = torch.randn(shape)
        got = call(layer, x)
        expected = nn.functional.linear(x, layer.weight, layer.bias).detach()
        expect_close(got, expected, atol=1e-5, rtol=1e-4,
                     what=f"Linear(3, 4) on an input of shape {shape}", example=x)
    layer.zero_grad()
    out = call(layer, torch.randn(5, 3))
    out.sum().backward()
    for name in ("weight", "bias"):
        grad = getattr(layer, name).grad
        expect_true(grad is not None and grad.abs().sum() > 0,
                    f"no gradient reached Linear.{name}: use self.{name} in forward, without "
                    ".detach(), .data or torch.no_grad().")
    no_bias = call(cls, 3, 2, bias=False)
    expect_true(getattr(no_bias, "bias", "missing") is None,
                "Linear(3, 2, bias=False).bias should be None (no bias parameter)")
    expect_equal(sorted(n for n, _ in no_bias.named_parameters()), ["weight"],
                 "parameters of Linear(3, 2, bias=False)")
    x = torch.randn(4, 3)
    expect_close(call(no_bias, x), (x @ no_bias.weight.T).detach(),
                 what="Linear(3, 2, bias=False)(x)", example=x)
    return "parameters, shapes, outputs and gradients all match nn.Linear"
