"""Exercise checkers: the function each lesson's check cell calls.

``from gptlab.checks import check_softmax`` then ``check_softmax(softmax)`` prints ✅ when the
learner's function is right, ⏳ "not done yet" while it is still a stub (and lets the lesson
run on), and explains a wrong answer before raising. The machinery is in
:mod:`gptlab.checks.core`; each lesson's checkers live in their own module
(``gptlab/checks/<topic>.py``) and are re-exported here: add yours to the imports and to
``__all__``.

Lesson 00 (setup): check_softmax, check_mse_gradient, check_linear_layer.
Lesson 01 (data): check_normalize_newlines, check_dedup, check_split.
Lesson 02 (tokenization): check_decode, check_encode, check_get_stats, check_merge.
Lesson 03 (embeddings): check_bigram_probs, check_nll, check_one_hot.
Lesson 04 (positional): check_apply_rope, check_rope_score, check_sinusoidal.
Lesson 05 (attention): check_attention_weights, check_causal_average, check_split_heads.
Lesson 06 (block): check_block_forward, check_gelu_tanh, check_layer_norm.
"""

from gptlab.checks.attention import check_attention_weights, check_causal_average, check_split_heads
from gptlab.checks.block import check_block_forward, check_gelu_tanh, check_layer_norm
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
from gptlab.checks.embeddings import check_bigram_probs, check_nll, check_one_hot
from gptlab.checks.positional import check_apply_rope, check_rope_score, check_sinusoidal
from gptlab.checks.setup import check_linear_layer, check_mse_gradient, check_softmax
from gptlab.checks.tokenization import check_decode, check_encode, check_get_stats, check_merge

__all__ = [
    "CheckFailed",
    "CheckResult",
    "ExerciseFailed",
    "LearnerError",
    "call",
    "check_apply_rope",
    "check_attention_weights",
    "check_bigram_probs",
    "check_block_forward",
    "check_causal_average",
    "check_decode",
    "check_dedup",
    "check_encode",
    "check_gelu_tanh",
    "check_get_stats",
    "check_layer_norm",
    "check_linear_layer",
    "check_merge",
    "check_mse_gradient",
    "check_nll",
    "check_normalize_newlines",
    "check_one_hot",
    "check_rope_score",
    "check_sinusoidal",
    "check_softmax",
    "check_split",
    "check_split_heads",
    "exercise",
    "expect_close",
    "expect_equal",
    "expect_shape",
    "expect_true",
    "expect_type",
    "fail",
    "short_repr",
]
