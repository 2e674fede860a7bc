"""The GPT model: the parts of a transformer block, the whole model, save and load.

Lesson 06 builds the block (norms, MLP, residual stream, pre-norm ``Block``); lesson 07 stacks
blocks into ``GPT``, counts its parameters and FLOPs and loads GPT-2's weights into it. The
module names follow GPT-2 (``wte``, ``wpe``, ``h.0.ln_1``, ``h.0.attn.c_attn``, ...), so a GPT-2
checkpoint maps onto this model tensor by tensor (see ``gptlab.hf_gpt2``). The config, its
presets and the parameter formula live in ``gptlab.config`` and are re-exported here.

Shapes, as in nanoGPT: B batch, T sequence length, C embedding size (n_embd), V vocab_size,
L n_layer, H n_head, D head size (C // H).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from gptlab.attention import CausalSelfAttention, KVCache, KVCacheLike
from gptlab.config import PRESETS, GPTConfig, param_breakdown, param_formula
from gptlab.positional import (
    LearnedPositionalEmbedding,
    SinusoidalPositionalEncoding,
    check_positions,
)

__all__ = ["GPT", "MLP", "PRESETS", "Block", "GPTConfig", "LayerNorm", "RMSNorm", "SwiGLU",
           "param_breakdown", "param_formula"]

FORMAT_VERSION = 1  # of the folder GPT.save writes


# ---------------------------------------------------------------------------- block parts


class LayerNorm(nn.Module):
    """(x - mean) / std over the last dimension, times weight plus an optional bias."""

    def __init__(self, ndim: int, bias: bool = True, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))
        self.bias = nn.Parameter(torch.zeros(ndim)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)  # (..., C)


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * weight: LayerNorm without centring and without bias."""

    def __init__(self, ndim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(ndim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()  # the mean of squares in float32, also under bf16
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., C)
        return xf.type_as(x) * self.weight


def make_norm(cfg: GPTConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return RMSNorm(cfg.n_embd, cfg.norm_eps)
    return LayerNorm(cfg.n_embd, cfg.bias, cfg.norm_eps)


class MLP(nn.Module):
    """Per-token feed-forward: widen (c_fc), GELU, narrow back (c_proj). GPT-2 uses the tanh
    approximation of GELU (approximate="tanh"); approximate="none" is the exact erf form."""

    def __init__(self, n_embd: int, hidden: int | None = None, dropout: float = 0.0,
                 bias: bool = True, approximate: str = "tanh") -> None:
        super().__init__()
        hidden = 4 * n_embd if hidden is None else hidden  # GPT-2's 4x expansion
        self.c_fc = nn.Linear(n_embd, hidden, bias=bias)
        self.gelu = nn.GELU(approximate=approximate)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class SwiGLU(nn.Module):
    """Gated MLP (Shazeer 2020, used by Llama): c_proj(silu(gate) * up). ``c_fc`` computes
    [gate | up] in one matrix, as ``c_attn`` computes [q | k | v]."""

    def __init__(self, n_embd: int, hidden: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 2 * hidden, bias=bias)
        self.c_proj = nn.Linear(hidden, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        gate, up = self.c_fc(x).chunk(2, dim=-1)  # 2 x (B, T, hidden)
        return self.dropout(self.c_proj(F.silu(gate) * up))  # (B, T, C)


class Block(nn.Module):
    """Pre-norm transformer block: x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg.n_embd, cfg.n_head, cfg.block_size, cfg.dropout,
                                        cfg.bias, cfg.attn_impl, rotary=cfg.positional == "rope",
                                        rope_base=cfg.rope_base)
        self.ln_2 = make_norm(cfg)
        if cfg.mlp == "swiglu":
            self.mlp: nn.Module = SwiGLU(cfg.n_embd, cfg.mlp_hidden, cfg.dropout, cfg.bias)
        else:
            approximate = "tanh" if cfg.mlp == "gelu" else "none"
            self.mlp = MLP(cfg.n_embd, cfg.mlp_hidden, cfg.dropout, cfg.bias, approximate)

    def forward(self, x: Tensor, kv_cache: KVCacheLike | None = None) -> Tensor:
        x = x + self.attn(self.ln_1(x), kv_cache=kv_cache)  # (B, T, C): tokens talk
        return x + self.mlp(self.ln_2(x))  # (B, T, C): each token thinks on its own


# ---------------------------------------------------------------------------- the model


class GPT(nn.Module):
    """Token (+ position) embeddings, n_layer blocks, a final norm, and lm_head to logits."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = cfg = config
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)  # token embedding
        learned, sinusoidal = cfg.positional == "learned", cfg.positional == "sinusoidal"
        self.wpe = LearnedPositionalEmbedding(cfg.block_size, cfg.n_embd) if learned else None
        self.sinusoidal = (SinusoidalPositionalEncoding(cfg.block_size, cfg.n_embd)
                           if sinusoidal else None)  # rope: positions live inside attention
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        if cfg.tie_weights:  # one matrix reads tokens in and writes them out
            self.lm_head.weight = self.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: scale the residual-stream writers
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None,
                kv_caches: list[KVCacheLike] | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) token ids -> logits (B, T, V), and the mean cross-entropy loss against
        targets (B, T) (None without targets; targets of -1 are ignored). With ``kv_caches``
        (one per layer, see ``new_kv_caches``) idx holds only the new tokens."""
        idx, targets, start = self._check_input(idx, targets, kv_caches)
        T = idx.shape[1]
        x = self.wte(idx)  # (B, T, C)
        if self.wpe is not None:
            x = x + self.wpe(T, start_pos=start)  # (T, C), broadcast over the batch
        elif self.sinusoidal is not None:
            x = x + self.sinusoidal(T, start_pos=start)
        x = self.drop(x)
        for i, block in enumerate(self.h):
            x = block(x, kv_cache=None if kv_caches is None else kv_caches[i])  # (B, T, C)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1),
                               ignore_index=-1)
        return logits, loss

    def _check_input(self, idx: Tensor, targets: Tensor | None,
                     kv_caches: list[KVCacheLike] | None) -> tuple[Tensor, Tensor | None, int]:
        """Clear errors for bad input, at the cost of one min/max (these run every step)."""
        V = self.config.vocab_size
        if not isinstance(idx, Tensor) or idx.dim() != 2 or idx.shape[1] == 0:
            shape = tuple(idx.shape) if isinstance(idx, Tensor) else type(idx).__name__
            raise ValueError(f"idx must be a (B, T) tensor of token ids with T >= 1, got {shape}. "
                             "A single sequence needs a batch dimension: idx[None].")
        if idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dtype == torch.bool:
            raise ValueError(f"idx must hold integer token ids, got dtype {idx.dtype}. "
                             "Fix: idx.long().")
        if kv_caches is not None and len(kv_caches) != self.config.n_layer:
            raise ValueError(f"kv_caches needs one cache per layer ({self.config.n_layer}), got "
                             f"{len(kv_caches)}. Use model.new_kv_caches().")
        start = 0 if kv_caches is None else kv_caches[0].pos
        check_positions(idx.shape[1], start, self.config.block_size)
        if targets is not None:
            if not isinstance(targets, Tensor) or targets.shape != idx.shape or (
                    targets.dtype.is_floating_point or targets.dtype == torch.bool):
                got = (f"{tuple(targets.shape)} {targets.dtype}" if isinstance(targets, Tensor)
                       else type(targets).__name__)
                raise ValueError(f"targets must be integer token ids shaped like idx "
                                 f"{tuple(idx.shape)}, got {got}.")
            targets = targets.long()
        if idx.dtype not in (torch.int32, torch.int64):
            idx = idx.long()
        # The id range check reads values back from the device: a sync that stalls a GPU every
        # step, and a graph break under torch.compile. Training on an accelerator skips it
        # (gptlab.train checks all the data once, before the first step); a CPU always checks.
        if torch.compiler.is_compiling() or (self.training and idx.device.type != "cpu"):
            return idx, targets, start
        ranges = [t.long() for t in torch.aminmax(idx)]
        if targets is not None:
            ranges += list(torch.aminmax(targets))
        lo, hi, *t_lohi = torch.stack(ranges).tolist()  # one sync with the device
        if lo < 0 or hi >= V:
            raise ValueError(f"token id {lo if lo < 0 else hi} is outside the vocabulary [0, {V}) "
                             f"(vocab_size={V}). Fix: encode with the model's own tokenizer, or "
                             f"build the model with vocab_size >= {max(hi + 1, V)}.")
        if t_lohi and (t_lohi[0] < -1 or t_lohi[1] >= V):
            bad = t_lohi[0] if t_lohi[0] < -1 else t_lohi[1]
            raise ValueError(f"target {bad} is outside [0, {V}) (vocab_size={V}); use -1 for "
                             "positions the loss should ignore.")
        return idx, targets, start

    def new_kv_caches(self) -> list[KVCache]:
        """One fresh, empty KV cache per layer, for ``forward(idx, kv_caches=...)``."""
        return [KVCache() for _ in self.h]

    # ------------------------------------------------------------------ counting

    def num_params(self, non_embedding: bool = False) -> int:
        """Parameters, tied ones counted once. ``non_embedding=True`` leaves out the tables
        that are only looked up: position embeddings, and the token embedding unless it is
        tied to lm_head (then it is also the output layer's matrix). This is the N of 6N."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.wpe.weight.numel() if self.wpe is not None else 0
            n -= 0 if self.config.tie_weights else self.wte.weight.numel()
        return n

    def flops_per_token(self, T: int | None = None) -> int:
        """Training FLOPs (forward + backward) per token at context T (default block_size):
        6N + 12 * L * H * D * T, the PaLM / nanoGPT estimate. Each parameter costs 2 FLOPs
        (multiply, add) forward and 4 backward; attention's q @ k^T and weights @ v add
        2 * 2 * T * C forward per layer, times 3 for backward."""
        c = self.config
        T = c.block_size if T is None else T
        return 6 * self.num_params(non_embedding=True) + 12 * c.n_layer * c.n_head * c.head_size * T

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | os.PathLike) -> None:
        """Write folder ``path``: model.safetensors (weights; a tied lm_head is not repeated)
        and config.json ({"format": "gptlab", "format_version": 1, "config": {...}})."""
        refuse_lora_adapters(self.state_dict(), "model.save(path)")
        tensors = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()
                   if not (self.config.tie_weights and k == "lm_head.weight")}
        meta = {"format": "gptlab", "format_version": FORMAT_VERSION,
                "config": self.config.to_dict()}
        write_atomically(Path(path), {
            "model.safetensors": lambda f: save_file(tensors, f, metadata={"format": "pt"}),
            "config.json": lambda f: Path(f).write_text(json.dumps(meta, indent=2) + "\n")})

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device = "cpu") -> GPT:
        """Load a folder written by ``save``: same config, same tensors, same dtype."""
        path = Path(path)
        for f in (path / "config.json", path / "model.safetensors"):
            if not f.is_file():
                raise FileNotFoundError(f"{f} not found: GPT.load expects a folder written by "
                                        "model.save(path), holding config.json and "
                                        "model.safetensors.")
        meta = json.loads((path / "config.json").read_text())
        if meta.get("format") != "gptlab" or meta.get("format_version") != FORMAT_VERSION:
            hint = (" It looks like a Hugging Face GPT-2 checkpoint: use GPT.from_hf_gpt2(path)."
                    if meta.get("model_type") == "gpt2" else "")
            raise ValueError(f"{path / 'config.json'} is not a gptlab model config (format "
                             f"version {FORMAT_VERSION}).{hint}")
        model = cls(GPTConfig.from_dict(meta.get("config", {})))
        model.load_tensors(load_file(path / "model.safetensors"), str(path / "model.safetensors"))
        return model.to(map_location)

    def load_tensors(self, tensors: dict[str, Tensor], source: str = "checkpoint") -> None:
        """Copy named tensors in after checking names and shapes; takes on their float dtype."""
        expected = {k: v for k, v in self.state_dict().items()
                    if not (self.config.tie_weights and k == "lm_head.weight")}
        missing, unexpected = sorted(expected.keys() - tensors), sorted(tensors.keys() - expected)
        if missing or unexpected:
            raise ValueError(f"{source} does not fit this model: missing tensors {missing}, "
                             f"unexpected tensors {unexpected}. Was it saved with another "
                             "config (positional, norm, mlp, bias, tie_weights)?")
        for k, t in tensors.items():
            if t.shape != expected[k].shape:
                raise ValueError(f"tensor {k!r} in {source} has shape {tuple(t.shape)}, but the "
                                 f"model expects {tuple(expected[k].shape)}.")
        if len(dtypes := {t.dtype for t in tensors.values() if t.is_floating_point()}) == 1:
            self.to(dtypes.pop())
        self.load_state_dict(tensors, strict=False)  # lm_head.weight of a tied model is wte's

    # ------------------------------------------------------------------ GPT-2 (Hugging Face)

    @classmethod
    def from_hf_gpt2(cls, path: str | os.PathLike, **overrides) -> GPT:
        """Load a transformers GPT-2 checkpoint folder (config.json + weights) as float32.
        ``overrides`` set options that keep the shapes, e.g. dropout=0.1, attn_impl="naive"."""
        from gptlab.hf_gpt2 import load_hf_gpt2

        return load_hf_gpt2(path, **overrides)

    def to_hf_gpt2(self, path: str | os.PathLike) -> None:
        """Write a folder that ``transformers.GPT2LMHeadModel.from_pretrained`` loads."""
        from gptlab.hf_gpt2 import save_hf_gpt2

        save_hf_gpt2(self, path)


def refuse_lora_adapters(state: dict[str, Tensor], action: str) -> None:
    """ValueError when ``state`` holds LoRA adapter tensors (``...lora_A``): a model file
    with them fits neither GPT.load nor GPT-2 (transformers would drop them silently)."""
    if names := [k for k in state if k.endswith((".lora_A", ".lora_B"))]:
        raise ValueError(f"the model holds LoRA adapters ({names[0]}, ...), which {action} "
                         "cannot write as plain weights. Fix: gptlab.finetune.merge_lora(model) "
                         "first (one plain model), or save_lora(model, path) for the adapters "
                         "alone.")


def write_atomically(folder: Path, writers: dict[str, Callable[[str], object]]) -> None:
    """Write each file of ``folder`` through ``writers[name](temp_path)`` into a temporary file
    beside it, then rename them into place: each file is the old one or the new one, never half
    written, and a failed write leaves the folder as it was."""
    folder.mkdir(parents=True, exist_ok=True)
    tmps = {name: folder / f".{name}.{uuid.uuid4().hex}.tmp" for name in writers}
    umask = os.umask(0)
    os.umask(umask)
    try:
        for name, write in writers.items():
            write(str(tmps[name]))
            os.chmod(tmps[name], 0o666 & ~umask)  # safetensors writes owner-only (0o600)
            with open(tmps[name], "rb+") as f:
                os.fsync(f.fileno())  # on disk before the rename makes it count
        for name, tmp in tmps.items():
            os.replace(tmp, folder / name)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)
