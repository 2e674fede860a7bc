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
Lesson 07 (model): check_count_params, check_flops_per_token, check_gpt_forward.
Lesson 08 (training): check_clip_grad_norm, check_get_lr, check_split_decay.
Lesson 09 (sampling): check_softmax_with_temperature, check_top_k_filter, check_top_p_filter.
Lesson 10 (evaluation): check_evaluate_sliding, check_longest_common_substring, check_summarize_loss.
Lesson 11 (finetuning): check_freeze_bottom, check_lora_forward, check_merge_weight.
Lesson 12 (deployment): check_chat_prompt, check_parse_sse.
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
from gptlab.checks.deployment import check_chat_prompt, check_parse_sse
from gptlab.checks.embeddings import check_bigram_probs, check_nll, check_one_hot
from gptlab.checks.evaluation import (
    check_evaluate_sliding,
    check_longest_common_substring,
    check_summarize_loss,
)
from gptlab.checks.finetuning import check_freeze_bottom, check_lora_forward, check_merge_weight
from gptlab.checks.model import check_count_params, check_flops_per_token, check_gpt_forward
from gptlab.checks.positional import check_apply_rope, check_rope_score, check_sinusoidal
from gptlab.checks.sampling import (
    check_softmax_with_temperature,
    check_top_k_filter,
    check_top_p_filter,
)
from gptlab.checks.setup import check_linear_layer, check_mse_gradient, check_softmax
from gptlab.checks.tokenization import check_decode, check_encode, check_get_stats, check_merge
from gptlab.checks.training import check_clip_grad_norm, check_get_lr, check_split_decay

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
    "check_chat_prompt",
    "check_clip_grad_norm",
    "check_count_params",
    "check_decode",
    "check_dedup",
    "check_encode",
    "check_evaluate_sliding",
    "check_flops_per_token",
    "check_freeze_bottom",
    "check_gelu_tanh",
    "check_get_lr",
    "check_get_stats",
    "check_gpt_forward",
    "check_layer_norm",
    "check_linear_layer",
    "check_longest_common_substring",
    "check_lora_forward",
    "check_merge",
    "check_merge_weight",
    "check_mse_gradient",
    "check_nll",
    "check_normalize_newlines",
    "check_one_hot",
    "check_parse_sse",
    "check_rope_score",
    "check_sinusoidal",
    "check_softmax",
    "check_softmax_with_temperature",
    "check_split",
    "check_split_decay",
    "check_split_heads",
    "check_summarize_loss",
    "check_top_k_filter",
    "check_top_p_filter",
    "exercise",
    "expect_close",
    "expect_equal",
    "expect_shape",
    "expect_true",
    "expect_type",
    "fail",
    "short_repr",
]
