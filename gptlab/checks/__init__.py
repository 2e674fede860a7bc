"""Exercise checkers: the function each lesson's check cell calls.

``from gptlab.checks import check_softmax`` then ``check_softmax(softmax)`` prints ✅ when the
learner's function is right, ⏳ "not done yet" while it is still a stub (and lets the lesson
run on), and explains a wrong answer before raising. The machinery is in
:mod:`gptlab.checks.core`; each lesson's checkers live in their own module
(``gptlab/checks/<topic>.py``) and are re-exported here: add yours to the imports and to
``__all__``.

Lesson 00 (setup): check_softmax, check_mse_gradient, check_linear_layer.
Lesson 01 (data): check_normalize_newlines, check_dedup, check_split.
"""

from gptlab.checks.core import (
    CheckFailed,
    CheckResult,
    ExerciseFailed,
    LearnerError,
    call,
    exercise,
    expect_close,
    expect_equal,
    expect_shape,
    expect_true,
    expect_type,
    fail,
    short_repr,
)
from gptlab.checks.data import check_dedup, check_normalize_newlines, check_split
from gptlab.checks.setup import check_linear_layer, check_mse_gradient, check_softmax

__all__ = [
    "CheckFailed",
    "CheckResult",
    "ExerciseFailed",
    "LearnerError",
    "call",
    "check_dedup",
    "check_linear_layer",
    "check_mse_gradient",
    "check_normalize_newlines",
    "check_softmax",
    "check_split",
    "exercise",
    "expect_close",
    "expect_equal",
    "expect_shape",
    "expect_true",
    "expect_type",
    "fail",
    "short_repr",
]
