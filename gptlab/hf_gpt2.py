"""GPT-2 in Hugging Face format: load a transformers checkpoint into ``GPT``, write one back.

A transformers GPT-2 folder holds ``config.json`` (n_embd, n_layer, n_head, n_positions,
vocab_size, layer_norm_epsilon, activation_function, ...) and ``model.safetensors`` (or the
older ``pytorch_model.bin``). Its tensors have our names, with two differences:

- the keys may start with ``transformer.`` (GPT2LMHeadModel) or not (GPT2Model);
- GPT-2 was written with a ``Conv1D`` layer that stores its weight as (in, out), the
  transpose of ``nn.Linear``'s (out, in): the c_attn, c_proj and c_fc weights are transposed.

Old checkpoints also hold the causal masks ``attn.bias`` / ``attn.masked_bias`` as tensors;
they are not weights and are skipped. transformers itself is never imported here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from gptlab.model import GPT, GPTConfig, refuse_lora_adapters, write_atomically

__all__ = ["config_from_hf", "config_to_hf", "load_hf_gpt2", "save_hf_gpt2"]

CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
ACTIVATIONS = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu": "gelu_exact"}  # HF: ours
REQUIRED = ("vocab_size", "n_positions", "n_layer", "n_head", "n_embd")


def config_from_hf(hf: dict, **overrides) -> GPTConfig:
    """GPTConfig for a transformers GPT-2 config.json dict; ``overrides`` (e.g. dropout=0.1)
    set options that do not change the weights' shapes."""
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"Not a GPT-2 config: model_type={hf['model_type']!r} (need 'gpt2').")
    hf = {"n_positions": hf.get("n_ctx"), **hf}  # very old configs name the context n_ctx
    if missing := [k for k in REQUIRED if hf.get(k) is None]:
        raise ValueError(f"GPT-2 config.json lacks {missing}; it needs {list(REQUIRED)}.")
    act = hf.get("activation_function", "gelu_new")
    if act not in ACTIVATIONS:
        raise ValueError(f"Unsupported activation_function={act!r}: gptlab's GPT supports "
                         f"{list(ACTIVATIONS)}.")
    fixed = {"scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
             "add_cross_attention": False}
    if bad := {k: hf[k] for k, ok in fixed.items() if k in hf and hf[k] != ok}:
        raise ValueError(f"Unsupported GPT-2 options {bad}: gptlab's GPT needs {fixed}.")
    C = hf["n_embd"]
    n_inner = hf.get("n_inner") or 4 * C
    if n_inner % C:
        raise ValueError(f"Unsupported n_inner={n_inner}: it must be a multiple of n_embd={C}.")
    return GPTConfig(vocab_size=hf["vocab_size"], block_size=hf["n_positions"],
                     n_layer=hf["n_layer"], n_head=hf["n_head"], n_embd=C,
                     mlp=ACTIVATIONS[act], mlp_ratio=n_inner // C,
                     norm_eps=hf.get("layer_norm_epsilon", 1e-5),
                     tie_weights=hf.get("tie_word_embeddings", True), **overrides)


def config_to_hf(cfg: GPTConfig) -> dict:
    """The transformers config.json dict for a GPT-2-compatible GPTConfig (else ValueError)."""
    problems = []
    if cfg.positional != "learned":
        problems.append(f"positional={cfg.positional!r} (GPT-2: 'learned')")
    if cfg.norm != "layernorm":
        problems.append(f"norm={cfg.norm!r} (GPT-2: 'layernorm')")
    if cfg.mlp not in ("gelu", "gelu_exact"):
        problems.append(f"mlp={cfg.mlp!r} (GPT-2: 'gelu')")
    if not cfg.bias:
        problems.append("bias=False (GPT-2: True)")
    if problems:
        raise ValueError(f"This model cannot be written as GPT-2: {', '.join(problems)}. "
                         "Use model.save(path) for gptlab's own format.")
    eos = cfg.vocab_size - 1 if cfg.vocab_size == 50257 else None  # <|endoftext|>
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": cfg.vocab_size, "n_positions": cfg.block_size, "n_ctx": cfg.block_size,
        "n_embd": cfg.n_embd, "n_layer": cfg.n_layer, "n_head": cfg.n_head,
        "n_inner": None if cfg.mlp_ratio == 4 else cfg.mlp_ratio * cfg.n_embd,
        "activation_function": "gelu_new" if cfg.mlp == "gelu" else "gelu",
        "layer_norm_epsilon": cfg.norm_eps, "initializer_range": 0.02,
        "resid_pdrop": cfg.dropout, "embd_pdrop": cfg.dropout, "attn_pdrop": cfg.dropout,
        "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "use_cache": True,
        "tie_word_embeddings": cfg.tie_weights, "bos_token_id": eos, "eos_token_id": eos,
    }


def _read_weights(folder: Path) -> dict[str, Tensor]:
    """model.safetensors, a sharded model.safetensors.index.json, or pytorch_model.bin."""
    if (folder / "model.safetensors").is_file():
        return load_file(folder / "model.safetensors")
    if (index := folder / "model.safetensors.index.json").is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return {k: v for shard in shards for k, v in load_file(folder / shard).items()}
    if (folder / "pytorch_model.bin").is_file():  # weights only: never unpickle code
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
    raise FileNotFoundError(f"No GPT-2 weights in {folder}: expected model.safetensors (or "
                            "pytorch_model.bin), as written by save_pretrained.")


def load_hf_gpt2(path: str | os.PathLike, **overrides) -> GPT:
    """A float32 ``GPT`` with the weights of a transformers GPT-2 checkpoint folder."""
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder / 'config.json'} not found: from_hf_gpt2 expects a "
                                "transformers GPT-2 folder (config.json + model.safetensors).")
    cfg = config_from_hf(json.loads((folder / "config.json").read_text()), **overrides)
    tensors = {}
    for key, t in _read_weights(folder).items():
        key = key.removeprefix("transformer.")
        if key.endswith((".attn.bias", ".attn.masked_bias")):  # causal masks, not weights
            continue
        if key == "lm_head.weight" and cfg.tie_weights:  # the same matrix as wte.weight
            continue
        tensors[key] = (t.t() if key.endswith(CONV1D) else t).float().contiguous()
    model = GPT(cfg)
    model.load_tensors(tensors, source=f"GPT-2 checkpoint {folder}")
    return model


def save_hf_gpt2(model: GPT, path: str | os.PathLike) -> None:
    """Write config.json + model.safetensors that GPT2LMHeadModel.from_pretrained loads."""
    hf_config = config_to_hf(model.config)
    refuse_lora_adapters(model.state_dict(), "model.to_hf_gpt2(path)")
    hf_config["torch_dtype"] = str(model.wte.weight.dtype).removeprefix("torch.")
    tensors = {}
    for key, t in model.state_dict().items():
        if key == "lm_head.weight":
            if not model.config.tie_weights:
                tensors[key] = t.detach().cpu().contiguous()
            continue
        t = t.t() if key.endswith(CONV1D) else t  # nn.Linear (out, in) -> Conv1D (in, out)
        tensors["transformer." + key] = t.detach().cpu().contiguous()
    write_atomically(Path(path), {
        "model.safetensors": lambda f: save_file(tensors, f, metadata={"format": "pt"}),
        "config.json": lambda f: Path(f).write_text(json.dumps(hf_config, indent=2) + "\n")})
