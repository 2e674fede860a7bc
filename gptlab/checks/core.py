"""The machinery behind every exercise check cell.

A lesson's check cell calls a checker such as ``check_softmax(softmax)``. A checker is a
plain function decorated with :func:`exercise`; inside it, the learner's code is called
through :func:`call` and the answers are judged with the ``expect_*`` helpers, which raise
:class:`CheckFailed` with an explanation ("expected ..., got ... for input ...").

The decorator turns the four possible endings into what a learner should see:

========================  ==========================================================
the learner's code ...    the check cell ...
========================  ==========================================================
is right                  prints ``✅ Exercise 2.1 passed: ...``; returns a truthy result
is still a stub           prints ``⏳ ... not done yet ...``; returns a falsy result, so
(NotImplementedError)     the lesson keeps running top to bottom
gives a wrong answer      prints the explanation and raises :class:`ExerciseFailed`
                          (an AssertionError), so a broken solutions notebook fails
raises another error      prints which error on which input, and re-raises it
========================  ==========================================================

Writing a checker for a new lesson (in ``gptlab/checks/<topic>.py``, re-exported from
``gptlab/checks/__init__.py``)::

    @exercise("2.1", "count adjacent pairs")
    def check_get_stats(fn):
        \"\"\"Check ``get_stats(ids: list[int]) -> dict[tuple[int, int], int]``.\"\"\"
        for ids in ([], [1], [1, 2, 1, 2]):
            expect_equal(call(fn, list(ids)), reference(ids), what="pair counts", example=ids)
        return "counts match on 3 inputs"   # optional detail for the pass message
"""

from __future__ import annotations

import functools
import math
import reprlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

__all__ = [
    "CheckFailed",
    "CheckResult",
    "ExerciseFailed",
    "LearnerError",
    "call",
    "exercise",
    "expect_close",
    "expect_equal",
    "expect_shape",
    "expect_true",
    "expect_type",
    "fail",
    "short_repr",
]


class CheckFailed(AssertionError):
    """A wrong answer; the message says what was expected, what came back, and on what input.

    Raised by the ``expect_*`` helpers and :func:`fail`. It is an AssertionError, so a helper
    used on its own (outside a checker) still fails loudly.
    """


class ExerciseFailed(CheckFailed):
    """What a check cell raises for a wrong answer: 'Exercise N.M (title): explanation'."""


class LearnerError(Exception):
    """The learner's function raised; carries the original exception and the input."""

    def __init__(self, original: BaseException, inputs: str):
        super().__init__(f"{type(original).__name__}: {original} (input: {inputs})")
        self.original = original
        self.inputs = inputs


class CheckResult:
    """What a check returns: truthy when the exercise passed, falsy when it is not done yet.

    It shows nothing when it is the last value of a notebook cell (the printed message is
    the feedback), so check cells do not end in a stray ``True``.
    """

    __slots__ = ("detail", "exercise_id", "status", "title")

    def __init__(self, exercise_id: str, title: str, status: str, detail: str = ""):
        self.exercise_id = exercise_id
        self.title = title
        self.status = status  # "passed" or "not done"
        self.detail = detail

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"<Exercise {self.exercise_id} ({self.title}): {self.status}>"

    def _ipython_display_(self) -> None:  # the printed message is the display
        pass


_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlist = 8
_repr.maxtuple = 8
_repr.maxdict = 6
_repr.maxset = 8


def short_repr(x: Any) -> str:
    """A one-line description of a value for messages: small tensors in full, big ones by
    shape and dtype, long strings and lists cut with '...'."""
    if isinstance(x, torch.Tensor):
        dtype = str(x.dtype).replace("torch.", "")
        if x.numel() <= 12 and x.dim() <= 2:
            return f"tensor({_fmt(x.detach().cpu().tolist())}, dtype={dtype})"
        return f"tensor of shape {tuple(x.shape)} (dtype={dtype})"
    if isinstance(x, tuple) and any(isinstance(v, torch.Tensor) for v in x):
        return "(" + ", ".join(short_repr(v) for v in x) + ")"
    return _repr.repr(x)


def _fmt(v: Any) -> str:
    """Nested lists of numbers with floats at 4 significant digits."""
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(u) for u in v) + "]"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        text = f"{v:.4g}"
        return text + "." if text.lstrip("-").isdigit() else text
    return repr(v)


def _type_name(x: Any) -> str:
    return "torch.Tensor" if isinstance(x, torch.Tensor) else type(x).__name__


def _type_label(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(t.__name__ if t is not torch.Tensor else "torch.Tensor" for t in types)
    return "torch.Tensor" if types is torch.Tensor else types.__name__


def _where(what: str, example: Any) -> tuple[str, str]:
    label = what or "result"
    suffix = "" if example is None else f" for input {short_repr(example)}"
    return label, suffix


# ----------------------------------------------------------------------------- helpers


def fail(message: str) -> None:
    """Reject the answer with a message of your own."""
    raise CheckFailed(message)


def expect_true(condition: Any, message: str) -> None:
    """Reject the answer with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def expect_type(obj: Any, types: type | tuple[type, ...], what: str = "", example: Any = None):
    """The answer is an instance of ``types`` (a type or a tuple of types)."""
    if not isinstance(obj, types):
        label, suffix = _where(what, example)
        raise CheckFailed(
            f"{label}: expected a {_type_label(types)}, got a {_type_name(obj)} "
            f"({short_repr(obj)}){suffix}"
        )


def expect_shape(t: Any, shape: Sequence[int | None], what: str = "", example: Any = None):
    """``t.shape`` equals ``shape``; ``None`` in ``shape`` matches any size."""
    label, suffix = _where(what, example)
    if not hasattr(t, "shape"):
        raise CheckFailed(
            f"{label}: expected a tensor of shape {tuple(shape)}, got a {_type_name(t)} "
            f"({short_repr(t)}){suffix}"
        )
    got = tuple(t.shape)
    want = tuple(shape)
    if len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
        pretty = "(" + ", ".join("*" if w is None else str(w) for w in want) + ")"
        raise CheckFailed(f"{label}: expected shape {pretty}, got shape {got}{suffix}")


def _first_difference(got: Any, expected: Any) -> str:
    """A pointer to where two unequal values first differ (for lists, strings, dicts)."""
    numbers = (int, float)
    if type(got) is not type(expected) and not (
        isinstance(got, numbers) and isinstance(expected, numbers)
        and isinstance(got, bool) == isinstance(expected, bool)
    ):
        return f"expected a {_type_name(expected)}, got a {_type_name(got)}"
    if isinstance(got, str) and isinstance(expected, str):
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                return (
                    f"first difference at character {i}: expected {expected[i:i + 10]!r}..., "
                    f"got {got[i:i + 10]!r}..."
                )
        return f"lengths differ: expected {len(expected)} characters, got {len(got)}"
    if isinstance(got, Mapping) and isinstance(expected, Mapping):
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        parts = []
        if missing:
            parts.append(f"missing keys {short_repr(missing)}")
        if extra:
            parts.append(f"unexpected keys {short_repr(extra)}")
        for k in expected:
            if k in got and got[k] != expected[k]:
                parts.append(f"at key {k!r}: expected {short_repr(expected[k])}, "
                             f"got {short_repr(got[k])}")
                break
        return "; ".join(parts)
    seqs = (list, tuple)
    if isinstance(got, seqs) and isinstance(expected, seqs):
        for i, (a, b) in enumerate(zip(got, expected)):
            if a != b:
                return f"first difference at index {i}: expected {short_repr(b)}, got {short_repr(a)}"
        return f"lengths differ: expected {len(expected)} items, got {len(got)}"
    return ""


def expect_equal(got: Any, expected: Any, what: str = "", example: Any = None) -> None:
    """``got == expected`` exactly (tensors: same shape and values; use expect_close for
    floats). The message shows both values, the input, and where they first differ."""
    label, suffix = _where(what, example)
    if isinstance(expected, torch.Tensor):
        expect_type(got, torch.Tensor, what, example)
        expect_shape(got, expected.shape, what, example)
        if not torch.equal(got.detach().cpu(), expected.detach().cpu().to(got.dtype)) or (
            got.dtype.is_floating_point != expected.dtype.is_floating_point
        ):
            raise CheckFailed(
                f"{label}: expected {short_repr(expected)}, got {short_repr(got)}{suffix}"
            )
        return
    numbers = (int, float)
    try:
        if isinstance(got, numbers) and isinstance(expected, numbers):  # 2 == 2.0, 1 != True
            same = isinstance(got, bool) == isinstance(expected, bool) and got == expected
        else:
            same = type(got) is type(expected) and bool(got == expected)
    except (TypeError, ValueError, RuntimeError):  # e.g. a tensor compared with a list
        same = False
    if not same:
        hint = _first_difference(got, expected)
        raise CheckFailed(
            f"{label}: expected {short_repr(expected)}, got {short_repr(got)}{suffix}"
            + (f"\n  {hint}" if hint else "")
        )


def expect_close(
    got: Any,
    expected: Any,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    what: str = "",
    example: Any = None,
) -> None:
    """``got`` matches ``expected`` within ``atol + rtol * |expected|``, element by element.

    Works for numbers and tensors. For tensors the shapes must match exactly; the message
    gives the number of mismatches, the largest absolute difference, and the first bad
    position with both values. NaN in ``got`` where ``expected`` has none is always wrong.
    """
    label, suffix = _where(what, example)
    if not isinstance(expected, torch.Tensor):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, (int, float)):
            raise CheckFailed(
                f"{label}: expected a number close to {expected!r}, got a {_type_name(got)} "
                f"({short_repr(got)}){suffix}"
            )
        e, g = float(expected), float(got)
        if math.isnan(g) and not math.isnan(e):
            raise CheckFailed(f"{label}: expected {e!r}, got nan{suffix}")
        if not (math.isclose(g, e, rel_tol=rtol, abs_tol=atol) or g == e
                or (math.isnan(g) and math.isnan(e))):
            raise CheckFailed(
                f"{label}: expected {e!r}, got {g!r} (difference {abs(g - e):.3g}, "
                f"allowed {atol + rtol * abs(e):.3g}){suffix}"
            )
        return
    expect_type(got, torch.Tensor, what, example)
    expect_shape(got, expected.shape, what, example)
    g = got.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    n_bad, n = int(bad.sum()), bad.numel()
    first = tuple(int(i) for i in bad.nonzero()[0])
    index = first if len(first) != 1 else first[0]
    g_at, e_at = g[first].item() if first else g.item(), e[first].item() if first else e.item()
    nan_got = torch.isnan(g) & ~torch.isnan(e)
    lines = [f"{label}: values differ at {n_bad} of {n} positions{suffix}"]
    if nan_got.any():
        lines.append(f"  got NaN at {int(nan_got.sum())} positions (nan means a 0/0, inf-inf "
                     f"or an overflow somewhere)")
    finite = torch.isfinite(g) & torch.isfinite(e)
    if (bad & finite).any():
        diff = (g - e).abs()[bad & finite].max().item()
        lines.append(f"  largest absolute difference {diff:.3g} (allowed: atol={atol:g} + "
                     f"rtol={rtol:g} * |expected|)")
    lines.append(f"  first at index {index}: expected {e_at:.6g}, got {g_at:.6g}")
    if n <= 12 and g.dim() <= 2:
        lines.append(f"  expected {short_repr(expected)}\n  got      {short_repr(got)}")
    raise CheckFailed("\n".join(lines))


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the learner's ``fn(*args, **kwargs)``. NotImplementedError passes through (the
    exercise is not done yet); any other error is wrapped in :class:`LearnerError` with a
    description of the input, so the check can say what input made it fail."""
    __tracebackhide__ = True
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:
        parts = [short_repr(a) for a in args] + [f"{k}={short_repr(v)}" for k, v in kwargs.items()]
        raise LearnerError(exc, ", ".join(parts)) from exc


# ----------------------------------------------------------------------------- decorator


def exercise(exercise_id: str, title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn a checker into a check-cell function for Exercise ``exercise_id``.

    The checker raises CheckFailed (through the helpers) for a wrong answer and may return a
    short string that is added to the pass message. It runs inside ``torch.random.fork_rng``,
    so it may seed freely without changing the random numbers the notebook draws next. See the module docstring for what the
    learner sees in each case.
    """

    def decorate(checker: Callable[..., Any]) -> Callable[..., Any]:
        name = f"Exercise {exercise_id} ({title})"

        @functools.wraps(checker)
        def run(*args: Any, **kwargs: Any) -> CheckResult:
            __tracebackhide__ = True
            try:
                with torch.random.fork_rng(devices=[]):  # leave the notebook's RNG alone
                    detail = checker(*args, **kwargs)
            except NotImplementedError as exc:
                print(f"⏳ {name}: not done yet — complete the function above and run this "
                      f"cell again." + _stub_note(exc, exercise_id))
                return CheckResult(exercise_id, title, "not done")
            except LearnerError as err:
                print(f"💥 {name}: your code raised {type(err.original).__name__}: "
                      f"{err.original}\n   when called with: {err.inputs}\n"
                      f"   Read the error below, fix your code above and run this cell again.")
                raise err.original from None
            except CheckFailed as exc:
                print(f"❌ {name}: not right yet.\n{_indent(str(exc))}\n"
                      f"   Fix your code above and run this cell again.")
                raise ExerciseFailed(f"{name}: {exc}") from None
            except Exception as exc:
                print(f"💥 {name}: your code raised {type(exc).__name__}: {exc}\n"
                      f"   Read the error below, fix your code above and run this cell again.")
                raise
            detail = detail if isinstance(detail, str) else ""
            print(f"✅ Exercise {exercise_id} passed: {title}" + (f" — {detail}" if detail else ""))
            return CheckResult(exercise_id, title, "passed", detail)

        run.exercise_id = exercise_id  # type: ignore[attr-defined]
        run.title = title  # type: ignore[attr-defined]
        return run

    return decorate


def _indent(text: str, prefix: str = "   ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _stub_note(exc: NotImplementedError, exercise_id: str) -> str:
    """When the stub that raised belongs to another exercise, say which one."""
    msg = str(exc)
    if msg.startswith("Exercise ") and not msg.startswith(f"Exercise {exercise_id}:"):
        return f"\n   (It uses {msg.split(':')[0]}, which is not done yet either.)"
    return ""
