"""What to build: ``GPTConfig``, the named presets, and the parameter count by formula.

A config holds every size and switch of the model and is checked when it is made, so a bad
combination fails here with a message that says how to fix it, not deep inside a matmul.
``gptlab.model`` re-exports everything here: ``from gptlab.model import GPTConfig`` works.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from gptlab.attention import IMPLS

__all__ = ["MLPS", "NORMS", "POSITIONALS", "PRESETS", "GPTConfig", "param_breakdown",
           "param_formula"]

POSITIONALS = ("learned", "sinusoidal", "rope")
NORMS = ("layernorm", "rmsnorm")
MLPS = ("gelu", "gelu_exact", "swiglu")  # "gelu" is GPT-2's tanh approximation ("gelu_new")

_CHAR = {"vocab_size": 65}  # the characters of tinyshakespeare
_GPT2 = {"vocab_size": 50257, "block_size": 1024}  # and the default architecture is GPT-2's
# name: (what it is for, config). The GPT-2 sizes use dropout 0.0, for fine-tuning and
# inference; GPT-2 itself was trained with 0.1 (pass dropout=0.1 to pretrain one).
PRESETS: dict[str, tuple[str, dict]] = {
    "tiny": ("seconds on a CPU: tests and first runs",
             {**_CHAR, "block_size": 64, "n_layer": 2, "n_head": 2, "n_embd": 64}),
    "cpu-char": ("a few minutes on a laptop CPU: lesson-sized character model",
                 {**_CHAR, "block_size": 64, "n_layer": 2, "n_head": 4, "n_embd": 128}),
    "shakespeare-char": ("nanoGPT's Shakespeare character model, 10.8M: a GPU job",
                         {**_CHAR, "block_size": 256, "n_layer": 6, "n_head": 6, "n_embd": 384,
                          "dropout": 0.2}),
    "gpt2": ("GPT-2 small, 124M", {**_GPT2, "n_layer": 12, "n_head": 12, "n_embd": 768}),
    "gpt2-medium": ("GPT-2 medium, 350M",
                    {**_GPT2, "n_layer": 24, "n_head": 16, "n_embd": 1024}),
    "gpt2-large": ("GPT-2 large, 774M", {**_GPT2, "n_layer": 36, "n_head": 20, "n_embd": 1280}),
    "gpt2-xl": ("GPT-2 XL, 1558M", {**_GPT2, "n_layer": 48, "n_head": 25, "n_embd": 1600}),
}


@dataclass
class GPTConfig:
    """Every size and switch of the model. Checked on creation; ``preset(name)`` for named ones.

    The defaults are GPT-2's architecture: learned positions, LayerNorm (eps 1e-5) with bias,
    a 4x GELU-tanh MLP, lm_head tied to the token embedding.
    """

    vocab_size: int
    block_size: int  # the context length: the most tokens the model sees at once
    n_layer: int
    n_head: int
    n_embd: int
    dropout: float = 0.0
    bias: bool = True  # biases in Linear layers and LayerNorm
    positional: str = "learned"  # "learned" | "sinusoidal" | "rope"
    norm: str = "layernorm"  # "layernorm" | "rmsnorm"
    mlp: str = "gelu"  # "gelu" (tanh approximation) | "gelu_exact" (erf) | "swiglu"
    tie_weights: bool = True  # lm_head.weight is wte.weight
    attn_impl: str = "sdpa"  # "sdpa" (fused) | "naive"
    rope_base: float = 10000.0
    mlp_ratio: int = 4  # MLP hidden size = mlp_ratio * n_embd (2/3 of that for SwiGLU)
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "mlp_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {name}={v!r}.")
        for name, options in (("positional", POSITIONALS), ("norm", NORMS), ("mlp", MLPS),
                              ("attn_impl", IMPLS)):
            if getattr(self, name) not in options:
                raise ValueError(f"Unknown {name}={getattr(self, name)!r}: choose one of "
                                 f"{list(options)}.")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got dropout={self.dropout}.")
        for name in ("bias", "tie_weights"):
            if type(getattr(self, name)) is not bool:
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        for name in ("rope_base", "norm_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {name}={getattr(self, name)!r}.")
        C, H = self.n_embd, self.n_head
        heads = [h for h in range(1, C + 1) if C % h == 0]
        if C % H:
            raise ValueError(f"n_embd ({C}) must be divisible by n_head ({H}) so every head gets "
                             f"n_embd // n_head dimensions. Fix: n_head in {heads}.")
        if self.positional == "rope" and (C // H) % 2:
            raise ValueError(f"positional='rope' needs an even head size, but n_embd // n_head = "
                             f"{C} // {H} = {C // H} is odd. Fix: n_head in "
                             f"{[h for h in heads if (C // h) % 2 == 0]}, or another positional.")
        if self.positional == "sinusoidal" and C % 2:
            raise ValueError(f"positional='sinusoidal' needs an even n_embd (sin/cos pairs), got "
                             f"n_embd={C}. Fix: n_embd={C + 1} (or {C - 1}).")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head

    @property
    def mlp_hidden(self) -> int:
        """Width of the MLP's hidden layer. SwiGLU has three matrices instead of two, so it
        gets 2/3 of the width (rounded up to a multiple of 8), as in Llama: same parameters."""
        if self.mlp != "swiglu":
            return self.mlp_ratio * self.n_embd
        return 8 * math.ceil(2 * self.mlp_ratio * self.n_embd // 3 / 8)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> GPTConfig:
        known = [f.name for f in fields(cls)]
        if unknown := sorted(set(d) - set(known)):
            raise ValueError(f"Unknown GPTConfig keys {unknown}. Valid keys: {known}.")
        if missing := [k for k in known[:5] if k not in d]:
            raise ValueError(f"GPTConfig needs {missing} (required: {known[:5]}).")
        return cls(**d)

    @staticmethod
    def presets() -> list[str]:
        """Names of the presets; ``PRESETS[name][0]`` describes each."""
        return list(PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides) -> GPTConfig:
        """A named config, e.g. ``GPTConfig.preset("tiny", vocab_size=tok.vocab_size)``."""
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}. Presets: {list(PRESETS)}.")
        return cls.from_dict({**PRESETS[name][1], **overrides})


def param_breakdown(cfg: GPTConfig) -> dict[str, int]:
    """Parameter count of each part of the model, from the config alone (lesson 07)."""
    C, V, L, hid = cfg.n_embd, cfg.vocab_size, cfg.n_layer, cfg.mlp_hidden
    b = int(cfg.bias)
    norm = C if cfg.norm == "rmsnorm" else C + b * C  # weight (+ bias)
    mlp = (3 * C * hid + b * (2 * hid + C) if cfg.mlp == "swiglu"  # c_fc is 2x wide
           else 2 * C * hid + b * (hid + C))
    return {
        "wte": V * C,
        "wpe": cfg.block_size * C if cfg.positional == "learned" else 0,
        "attn (all layers)": L * (C * 3 * C + b * 3 * C + C * C + b * C),  # c_attn, c_proj
        "mlp (all layers)": L * mlp,
        "norms": (2 * L + 1) * norm,  # ln_1, ln_2 per block, and ln_f
        "lm_head": 0 if cfg.tie_weights else V * C,
    }


def param_formula(cfg: GPTConfig) -> int:
    """Total parameters of GPT(cfg) by formula, tied weights counted once."""
    return sum(param_breakdown(cfg).values())
