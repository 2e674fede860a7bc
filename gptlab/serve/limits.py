"""The server's limits: plain Python, no torch, so that the command line and ``start_server``
can check their arguments before anything heavy loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Limits"]

# ---------------------------------------------------------------------------- limits


def _int_at_least(name: str, value: Any, low: int, flag: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r} ({flag}).")


@dataclass(frozen=True)
class Limits:
    """What one server allows. ValueError on creation for a value out of range.

    - max_new_tokens_cap: the most tokens one request may ask for (``max_new_tokens``).
    - max_prompt_chars: the longest prompt, in characters.
    - max_concurrent: requests generating at the same time (they share one model).
    - max_queue: requests waiting for a turn; one more is refused with 503 and Retry-After.
    """

    max_new_tokens_cap: int = 1000
    max_prompt_chars: int = 20_000
    max_concurrent: int = 1
    max_queue: int = 16

    def __post_init__(self) -> None:
        _int_at_least("max_new_tokens_cap", self.max_new_tokens_cap, 1, "--max-new-tokens-cap")
        _int_at_least("max_prompt_chars", self.max_prompt_chars, 1, "--max-prompt-chars")
        _int_at_least("max_concurrent", self.max_concurrent, 1, "--max-concurrent")
        _int_at_least("max_queue", self.max_queue, 0, "--max-queue")

    @property
    def default_max_new_tokens(self) -> int:
        """What a request that names no max_new_tokens gets."""
        return min(100, self.max_new_tokens_cap)

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "default_max_new_tokens": self.default_max_new_tokens}
