"""gptlab.checks: the check-cell machinery and the lesson 00 / 01 checkers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gptlab import checks
from gptlab.checks import (
    CheckFailed,
    ExerciseFailed,
    call,
    exercise,
    expect_close,
    expect_equal,
    expect_shape,
    expect_type,
    short_repr,
)

# ----------------------------------------------------------------------------- machinery


@exercise("9.1", "double a list")
def check_double(fn):
    for xs in ([], [1], [1, 2, 3]):
        expect_equal(call(fn, list(xs)), [2 * x for x in xs], "double(xs)", xs)
    return "3 inputs"


def test_pass_prints_and_returns_truthy(capsys):
    result = check_double(lambda xs: [2 * x for x in xs])
    assert result and result.passed and result.detail == "3 inputs"
    assert capsys.readouterr().out == "✅ Exercise 9.1 passed: double a list — 3 inputs\n"
    assert repr(result) == "<Exercise 9.1 (double a list): passed>"
    assert result._ipython_display_() is None  # shows nothing as a cell's last value
    assert check_double.exercise_id == "9.1" and check_double.__name__ == "check_double"


def test_stub_is_not_done_and_returns_falsy(capsys):
    def stub(xs):
        raise NotImplementedError("Exercise 9.1: double a list")

    result = check_double(stub)
    assert not result and result.status == "not done"
    assert capsys.readouterr().out == (
        "⏳ Exercise 9.1 (double a list): not done yet — complete the function above and run "
        "this cell again.\n")


def test_stub_of_another_exercise_is_named(capsys):
    def uses_stub(xs):
        raise NotImplementedError("Exercise 9.0: helper")

    assert not check_double(uses_stub)
    assert "It uses Exercise 9.0, which is not done yet either" in capsys.readouterr().out


def test_wrong_answer_explains_and_raises_assertion(capsys):
    with pytest.raises(AssertionError) as err:
        check_double(lambda xs: [x + x + (x == 2) for x in xs])
    assert isinstance(err.value, ExerciseFailed)
    msg = str(err.value)
    assert msg.startswith("Exercise 9.1 (double a list): double(xs): expected [2, 4, 6], got "
                          "[2, 5, 6] for input [1, 2, 3]")
    assert "first difference at index 1: expected 4, got 5" in msg
    out = capsys.readouterr().out
    assert out.startswith("❌ Exercise 9.1 (double a list): not right yet.")
    assert "expected [2, 4, 6], got [2, 5, 6] for input [1, 2, 3]" in out


def test_learner_exception_names_the_input_and_is_reraised(capsys):
    def broken(xs):
        return [2 * x for x in xs] if xs else xs[0]

    with pytest.raises(IndexError):
        check_double(broken)
    out = capsys.readouterr().out
    assert "💥 Exercise 9.1 (double a list): your code raised IndexError" in out
    assert "when called with: []" in out


def test_exception_outside_call_is_reraised(capsys):
    @exercise("9.2", "direct call")
    def check_direct(fn):
        expect_equal(fn(), 1)

    def oops():
        raise KeyError("k")

    with pytest.raises(KeyError):
        check_direct(oops)
    assert "your code raised KeyError" in capsys.readouterr().out


def test_expect_equal_messages():
    expect_equal([1, 2], [1, 2])
    expect_equal(2, 2.0)
    with pytest.raises(CheckFailed, match=r"lengths differ: expected 3 items, got 2"):
        expect_equal([1, 2], [1, 2, 3])
    with pytest.raises(CheckFailed, match=r"expected a list, got a tuple"):
        expect_equal((1, 2), [1, 2])
    with pytest.raises(CheckFailed, match=r"first difference at character 2: expected 'c"):
        expect_equal("abX", "abc", what="text", example="in")
    with pytest.raises(CheckFailed, match=r"missing keys \['b'\]; at key 'a': expected 1, got 2"):
        expect_equal({"a": 2}, {"a": 1, "b": 3})
    with pytest.raises(CheckFailed, match=r"a bool: expected True, got 1\n  expected a bool, got a int"):
        expect_equal(1, True, "a bool")  # 1 == True in Python, but not the same answer
    expect_equal(torch.tensor([1, 2]), torch.tensor([1, 2]))
    with pytest.raises(CheckFailed, match=r"expected a torch.Tensor, got a list"):
        expect_equal([1, 2], torch.tensor([1, 2]))
    with pytest.raises(CheckFailed, match=r"expected tensor\(\[1, 2\], dtype=int64\)"):
        expect_equal(torch.tensor([1, 3]), torch.tensor([1, 2]))


def test_expect_close_messages():
    expect_close(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
    expect_close(0.1 + 0.2, 0.3)
    expect_close(torch.tensor(2.0), 2.0)
    with pytest.raises(CheckFailed, match=r"expected shape \(2, 3\), got shape \(3, 2\)"):
        expect_close(torch.zeros(3, 2), torch.zeros(2, 3), what="logits")
    with pytest.raises(CheckFailed) as err:
        expect_close(torch.tensor([[1.0, 2.0], [3.0, 4.5]]), torch.tensor([[1.0, 2.0], [3.0, 4.0]]),
                     what="out", example="x")
    msg = str(err.value)
    assert "out: values differ at 1 of 4 positions for input 'x'" in msg
    assert "largest absolute difference 0.5" in msg
    assert "first at index (1, 1): expected 4, got 4.5" in msg
    with pytest.raises(CheckFailed, match="got NaN at 1 positions"):
        expect_close(torch.tensor([float("nan"), 1.0]), torch.tensor([0.5, 1.0]))
    with pytest.raises(CheckFailed, match=r"expected 1.0, got 1.5 \(difference 0.5"):
        expect_close(1.5, 1.0)
    with pytest.raises(CheckFailed, match="expected a number close to 1.0, got a str"):
        expect_close("1", 1.0)


def test_expect_shape_type_and_short_repr():
    expect_shape(torch.zeros(2, 5), (2, None))
    with pytest.raises(CheckFailed, match=r"expected shape \(2, \*\), got shape \(2,\)"):
        expect_shape(torch.zeros(2), (2, None))
    with pytest.raises(CheckFailed, match="expected a tensor of shape"):
        expect_shape([1, 2], (2,))
    expect_type("s", (str, bytes))
    with pytest.raises(CheckFailed, match="expected a str or bytes, got a int"):
        expect_type(3, (str, bytes))
    assert short_repr(torch.tensor([1.0, 2.5])) == "tensor([1., 2.5], dtype=float32)"
    assert short_repr(torch.zeros(4, 5)) == "tensor of shape (4, 5) (dtype=float32)"
    assert short_repr("x" * 500).endswith("...xxxxxxxxxxxxxxxxxxxx'") or "..." in short_repr(
        "x" * 500)
    assert len(short_repr(list(range(1000)))) < 60


# ----------------------------------------------------------------------------- lesson 00


def good_softmax(x):
    e = (x - x.max(dim=-1, keepdim=True).values).exp()
    return e / e.sum(dim=-1, keepdim=True)


def stub(*args, **kwargs):
    raise NotImplementedError("Exercise 0.0: stub")


def expect_failure(capsys, checker, fn, *words):
    with pytest.raises(AssertionError) as err:
        checker(fn)
    out = capsys.readouterr().out
    for w in words:
        assert w in str(err.value) and w in out, (w, str(err.value))


def expect_not_done(capsys, checker):
    assert not checker(stub)
    assert "not done yet" in capsys.readouterr().out


def test_check_softmax(capsys):
    assert checks.check_softmax(good_softmax)
    assert "✅ Exercise 0.1 passed" in capsys.readouterr().out
    expect_not_done(capsys, checks.check_softmax)

    def naive(x):
        return x.exp() / x.exp().sum(dim=-1, keepdim=True)

    expect_failure(capsys, checks.check_softmax, naive, "overflows", "Subtract the maximum")

    def wrong_dim(x):
        e = (x - x.max()).exp()
        return e / e.sum()

    expect_failure(capsys, checks.check_softmax, wrong_dim, "should sum to 1")

    def in_place(x):
        x -= x.max(dim=-1, keepdim=True).values
        return x.exp_() / x.sum(dim=-1, keepdim=True)

    expect_failure(capsys, checks.check_softmax, in_place, "changed its input x in place")
    expect_failure(capsys, checks.check_softmax, lambda x: x.tolist(), "expected a torch.Tensor")


def test_check_mse_gradient(capsys):
    assert checks.check_mse_gradient(lambda w, x, y: 2 / len(x) * x.T @ (x @ w - y))

    def autograd(w, x, y):
        w = w.clone().requires_grad_(True)
        ((x @ w - y) ** 2).mean().backward()
        return w.grad

    assert checks.check_mse_gradient(autograd)
    capsys.readouterr()
    expect_not_done(capsys, checks.check_mse_gradient)
    expect_failure(capsys, checks.check_mse_gradient, lambda w, x, y: 2 * x.T @ (x @ w - y),
                   "times too big", "divide by N")
    expect_failure(capsys, checks.check_mse_gradient, lambda w, x, y: x.T @ (x @ w - y) / len(x),
                   "half the right size")
    expect_failure(capsys, checks.check_mse_gradient,
                   lambda w, x, y: 2 / len(x) * x.T @ (y - x @ w), "wrong sign")
    expect_failure(capsys, checks.check_mse_gradient, lambda w, x, y: (x @ w - y),
                   "one number per weight")


class GoodLinear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


def test_check_linear_layer(capsys):
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    assert checks.check_linear_layer(GoodLinear)
    assert torch.equal(torch.random.get_rng_state(), state)  # the notebook's RNG is untouched
    assert "✅ Exercise 0.3 passed" in capsys.readouterr().out

    class Stub(nn.Module):
        def __init__(self, in_features, out_features, bias=True):
            super().__init__()
            raise NotImplementedError("Exercise 0.3: a linear layer")

    expect_not_done(capsys, checks.check_linear_layer)
    assert not checks.check_linear_layer(Stub)

    class PlainTensor(GoodLinear):
        def __init__(self, i, o, bias=True):
            super().__init__(i, o, bias)
            del self.weight
            self.weight = torch.randn(o, i)

    expect_failure(capsys, checks.check_linear_layer, PlainTensor, "nn.Parameter")

    class Transposed(GoodLinear):
        def __init__(self, i, o, bias=True):
            super().__init__(i, o, bias)
            self.weight = nn.Parameter(torch.randn(i, o))

        def forward(self, x):
            return x @ self.weight + self.bias

    expect_failure(capsys, checks.check_linear_layer, Transposed, "expected shape (4, 3)")

    class NoBias(GoodLinear):
        def forward(self, x):
            return x @ self.weight.T

    expect_failure(capsys, checks.check_linear_layer, NoBias, "values differ", "shape (3,)")

    class Detached(GoodLinear):
        def forward(self, x):
            return x @ self.weight.T + self.bias.detach()

    expect_failure(capsys, checks.check_linear_layer, Detached, "no gradient reached Linear.bias")


# ----------------------------------------------------------------------------- lesson 01


def test_check_normalize_newlines(capsys):
    assert checks.check_normalize_newlines(lambda t: t.replace("\r\n", "\n").replace("\r", "\n"))
    capsys.readouterr()
    expect_not_done(capsys, checks.check_normalize_newlines)
    expect_failure(capsys, checks.check_normalize_newlines, lambda t: t.replace("\r", "\n"),
                   "Replace '\\r\\n' first")
    expect_failure(capsys, checks.check_normalize_newlines, lambda t: t.replace("\r\n", "\n"),
                   "expected 'old mac\\nlines\\n'")
    expect_failure(capsys, checks.check_normalize_newlines,
                   lambda t: t.replace("\r\n", "\n").replace("\r", "\n").strip(),
                   "normalize_newlines(text): expected")


def test_check_dedup(capsys):
    def good(lines):
        seen, out = set(), []
        for line in lines:
            if line not in seen:
                seen.add(line)
                out.append(line)
        return out

    assert checks.check_dedup(good)
    capsys.readouterr()
    expect_not_done(capsys, checks.check_dedup)
    expect_failure(capsys, checks.check_dedup, lambda lines: sorted(set(lines)),
                   "in the wrong order")
    expect_failure(capsys, checks.check_dedup,
                   lambda lines: list(dict.fromkeys(x.strip().lower() for x in lines)),
                   "dedup(lines): expected")
    expect_failure(capsys, checks.check_dedup, lambda lines: tuple(dict.fromkeys(lines)),
                   "expected a list, got a tuple")

    def mutating(lines):
        lines[:] = list(dict.fromkeys(lines))
        return lines

    expect_failure(capsys, checks.check_dedup, mutating, "changed the list it was given")


def test_check_split(capsys):
    def good(text, val_fraction):
        n = int(len(text) * (1 - val_fraction))
        return text[:n], text[n:]

    assert checks.check_split(good)
    capsys.readouterr()
    expect_not_done(capsys, checks.check_split)
    expect_failure(capsys, checks.check_split, lambda t, f: good(t, f)[::-1], "swapped")

    def rounded(text, f):
        n = round(len(text) * (1 - f))
        return text[:n], text[n:]

    expect_failure(capsys, checks.check_split, rounded, "int(10 * (1 - 0.25)) = 7")

    def overlapping(text, f):
        n = int(len(text) * (1 - f))
        return text[:n], text[max(n - 1, 0):]

    expect_failure(capsys, checks.check_split, overlapping, "train + val should give back")
    expect_failure(capsys, checks.check_split, lambda t, f: [t, ""], "expected a tuple")
    expect_failure(capsys, checks.check_split, lambda t, f: (t,), "two pieces")


def test_every_lessons_checker_is_exported_from_gptlab_checks():
    import ast
    from pathlib import Path

    import gptlab.checks

    folder = Path(gptlab.checks.__file__).parent
    defined = {node.name for path in folder.glob("*.py")
               for node in ast.parse(path.read_text(encoding="utf-8")).body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")}
    assert defined and defined <= set(gptlab.checks.__all__)
    assert all(callable(getattr(gptlab.checks, name)) for name in defined)
