"""Tests for gptlab.model and gptlab.config: config checks, presets, parameter and FLOP counts,
initialisation, forward and its input checks, KV-cache decoding, save/load."""

from __future__ import annotations

import itertools
import json
import math
import os

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.testing import assert_close

import gptlab.model as model_module
from gptlab.attention import KVCache
from gptlab.model import (
    GPT,
    MLP,
    PRESETS,
    Block,
    GPTConfig,
    LayerNorm,
    RMSNorm,
    SwiGLU,
    param_breakdown,
    param_formula,
)

TOL = {"atol": 1e-5, "rtol": 1e-5}
SMALL = {"vocab_size": 37, "block_size": 16, "n_layer": 2, "n_head": 4, "n_embd": 32}


def small(**kw) -> GPTConfig:
    return GPTConfig(**{**SMALL, **kw})


def make(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(small(**kw)).eval()


def rand_idx(B=3, T=16, V=37, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------- config


def test_defaults_are_gpt2_architecture():
    c = small()
    assert (c.positional, c.norm, c.mlp, c.bias, c.tie_weights) == (
        "learned", "layernorm", "gelu", True, True)
    assert (c.dropout, c.norm_eps, c.mlp_ratio, c.attn_impl) == (0.0, 1e-5, 4, "sdpa")
    assert c.head_size == 8 and c.mlp_hidden == 128


def test_config_dict_round_trip():
    c = small(positional="rope", norm="rmsnorm", mlp="swiglu", dropout=0.1, tie_weights=False)
    d = c.to_dict()
    assert json.loads(json.dumps(d)) == d
    assert GPTConfig.from_dict(d) == c


def test_from_dict_unknown_and_missing_keys():
    with pytest.raises(ValueError, match=r"Unknown GPTConfig keys \['n_heads'\].*Valid keys"):
        GPTConfig.from_dict({**SMALL, "n_heads": 4})
    d = dict(SMALL)
    del d["n_embd"]
    with pytest.raises(ValueError, match=r"needs \['n_embd'\]"):
        GPTConfig.from_dict(d)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"n_head": 5}, r"n_embd \(32\) must be divisible by n_head \(5\).*n_head in \[1, 2, 4"),
        ({"n_embd": 36, "n_head": 4, "positional": "rope"}, r"even head size.*36 // 4 = 9"),
        ({"n_embd": 33, "n_head": 3, "positional": "sinusoidal"}, r"even n_embd.*n_embd=33"),
        ({"n_layer": 0}, r"n_layer must be a positive integer, got n_layer=0"),
        ({"vocab_size": -1}, r"vocab_size must be a positive integer"),
        ({"block_size": 0}, r"block_size must be a positive integer"),
        ({"n_embd": 32.0}, r"n_embd must be a positive integer, got n_embd=32.0"),
        ({"mlp_ratio": 0}, r"mlp_ratio"),
        ({"dropout": 1.0}, r"dropout must be in \[0, 1\)"),
        ({"dropout": -0.1}, r"dropout must be in \[0, 1\)"),
        ({"positional": "alibi"}, r"Unknown positional='alibi'.*\['learned', 'sinusoidal', 'rope'\]"),
        ({"norm": "batchnorm"}, r"Unknown norm.*\['layernorm', 'rmsnorm'\]"),
        ({"mlp": "relu"}, r"Unknown mlp.*\['gelu', 'gelu_exact', 'swiglu'\]"),
        ({"attn_impl": "flash"}, r"Unknown attn_impl.*\['naive', 'sdpa'\]"),
        ({"bias": "yes"}, r"bias must be True or False"),
        ({"rope_base": 0.0}, r"rope_base must be > 0"),
        ({"norm_eps": -1e-5}, r"norm_eps must be > 0"),
    ],
)
def test_config_validation(kw, match):
    with pytest.raises(ValueError, match=match):
        small(**kw)


def test_presets():
    names = GPTConfig.presets()
    assert names == list(PRESETS)
    for n in ("tiny", "cpu-char", "shakespeare-char", "gpt2", "gpt2-medium", "gpt2-large",
              "gpt2-xl"):
        assert n in names and PRESETS[n][0]  # each has a description
    sc = GPTConfig.preset("shakespeare-char")
    assert (sc.n_layer, sc.n_head, sc.n_embd, sc.block_size, sc.dropout, sc.vocab_size) == (
        6, 6, 384, 256, 0.2, 65)
    t = GPTConfig.preset("tiny")
    assert (t.n_layer, t.n_head, t.n_embd, t.block_size) == (2, 2, 64, 64)
    c = GPTConfig.preset("cpu-char")
    assert (c.n_layer, c.n_head, c.n_embd, c.block_size) == (2, 4, 128, 64)
    sizes = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024),
             "gpt2-large": (36, 20, 1280), "gpt2-xl": (48, 25, 1600)}
    for name, (L, H, C) in sizes.items():
        g = GPTConfig.preset(name)
        assert (g.n_layer, g.n_head, g.n_embd, g.vocab_size, g.block_size) == (L, H, C, 50257, 1024)
        assert (g.positional, g.norm, g.mlp, g.bias, g.tie_weights, g.norm_eps) == (
            "learned", "layernorm", "gelu", True, True, 1e-5)


def test_preset_overrides_and_errors():
    c = GPTConfig.preset("tiny", vocab_size=100, positional="rope")
    assert (c.vocab_size, c.positional, c.n_embd) == (100, "rope", 64)
    with pytest.raises(ValueError, match=r"Unknown preset 'gpt3'.*'gpt2-xl'"):
        GPTConfig.preset("gpt3")
    with pytest.raises(ValueError, match="Unknown GPTConfig keys"):
        GPTConfig.preset("tiny", layers=3)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig.preset("tiny", n_head=3)


# ---------------------------------------------------------------------------- counting


@pytest.mark.parametrize("name", list(PRESETS))
def test_param_formula_matches_every_preset(name):
    cfg = GPTConfig.preset(name)
    with torch.device("meta"):  # no memory, no time: shapes only
        model = GPT(cfg)
    assert model.num_params() == param_formula(cfg) == sum(param_breakdown(cfg).values())


def test_gpt2_counts():
    cfg = GPTConfig.preset("gpt2")
    with torch.device("meta"):
        model = GPT(cfg)
    assert model.num_params() == param_formula(cfg) == 124_439_808
    assert model.num_params(non_embedding=True) == 124_439_808 - 1024 * 768  # minus wpe
    N = model.num_params(non_embedding=True)
    assert model.flops_per_token() == 6 * N + 12 * 12 * 12 * 64 * 1024
    assert model.flops_per_token(T=128) == 6 * N + 12 * 12 * 12 * 64 * 128


COMBOS = list(itertools.product(("learned", "sinusoidal", "rope"), ("layernorm", "rmsnorm"),
                                ("gelu", "gelu_exact", "swiglu")))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("tie", [True, False])
def test_param_formula_matches_combos(bias, tie):
    for positional, norm, mlp in COMBOS:
        cfg = small(positional=positional, norm=norm, mlp=mlp, bias=bias, tie_weights=tie)
        with torch.device("meta"):
            model = GPT(cfg)
        assert model.num_params() == param_formula(cfg), (positional, norm, mlp)
        emb = (cfg.block_size * cfg.n_embd if positional == "learned" else 0) + (
            0 if tie else cfg.vocab_size * cfg.n_embd)
        assert model.num_params(non_embedding=True) == model.num_params() - emb


def test_swiglu_width_keeps_params_close():
    cfg = small(n_embd=64, n_head=4, mlp="swiglu")
    assert cfg.mlp_hidden % 8 == 0
    gelu = param_breakdown(small(n_embd=64, n_head=4))["mlp (all layers)"]
    assert abs(param_breakdown(cfg)["mlp (all layers)"] - gelu) / gelu < 0.05


# ---------------------------------------------------------------------------- init


def test_initial_loss_is_uniform_guess():
    torch.manual_seed(0)
    for cfg in (GPTConfig.preset("tiny"), small(vocab_size=512, n_embd=64, block_size=32)):
        model = GPT(cfg).eval()
        idx = torch.randint(0, cfg.vocab_size, (8, cfg.block_size))
        targets = torch.randint(0, cfg.vocab_size, (8, cfg.block_size))
        with torch.no_grad():
            _, loss = model(idx, targets)
        assert abs(loss.item() - math.log(cfg.vocab_size)) < 0.1


def test_init_statistics_and_tying():
    torch.manual_seed(0)
    cfg = small(n_embd=128, n_layer=4, block_size=64, vocab_size=256)
    model = GPT(cfg)
    assert model.lm_head.weight is model.wte.weight
    assert abs(model.wte.weight.std().item() - 0.02) < 0.002
    assert abs(model.h[0].attn.c_attn.weight.std().item() - 0.02) < 0.002
    resid = 0.02 / math.sqrt(2 * cfg.n_layer)
    for block in model.h:
        for w in (block.attn.c_proj.weight, block.mlp.c_proj.weight):
            assert abs(w.std().item() - resid) < 0.1 * resid
        assert torch.all(block.attn.c_attn.bias == 0) and torch.all(block.mlp.c_fc.bias == 0)
        assert torch.all(block.ln_1.weight == 1) and torch.all(block.ln_1.bias == 0)
    untied = GPT(small(tie_weights=False))
    assert untied.lm_head.weight is not untied.wte.weight


# ---------------------------------------------------------------------------- parts


def test_parts():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 32) * 3 + 1
    ln = LayerNorm(32)
    assert_close(ln(x), F.layer_norm(x, (32,)), **TOL)
    assert LayerNorm(32, bias=False).bias is None
    rms = RMSNorm(32)
    assert_close(rms(x), x / x.pow(2).mean(-1, keepdim=True).add(1e-5).sqrt(), **TOL)
    mlp = MLP(32)
    assert mlp.c_fc.out_features == 128 and mlp(x).shape == x.shape
    assert_close(mlp(x), mlp.c_proj(F.gelu(mlp.c_fc(x), approximate="tanh")), **TOL)
    sw = SwiGLU(32, 48)
    a, b = sw.c_fc(x).chunk(2, dim=-1)
    assert_close(sw(x), sw.c_proj(F.silu(a) * b), **TOL)
    block = Block(small()).eval()
    y = block(x)
    assert_close(y, (x + block.attn(block.ln_1(x))) + block.mlp(block.ln_2(x + block.attn(
        block.ln_1(x)))), **TOL)
    names = {n.split(".")[0] for n, _ in block.named_parameters()}
    assert names == {"ln_1", "attn", "ln_2", "mlp"}


def test_gpt2_module_names():
    names = set(make().state_dict())
    assert {"wte.weight", "wpe.weight", "h.0.ln_1.weight", "h.0.attn.c_attn.weight",
            "h.1.mlp.c_proj.bias", "ln_f.weight", "lm_head.weight"} <= names


# ---------------------------------------------------------------------------- forward


def test_forward_shapes_and_loss():
    model = make()
    idx, targets = rand_idx(), rand_idx(seed=2)
    logits, loss = model(idx)
    assert logits.shape == (3, 16, 37) and loss is None
    logits, loss = model(idx, targets)
    assert_close(loss, F.cross_entropy(logits.reshape(-1, 37), targets.reshape(-1)))
    masked = targets.clone()
    masked[:, :8] = -1  # ignored positions
    _, loss_m = model(idx, masked)
    assert_close(loss_m, F.cross_entropy(logits[:, 8:].reshape(-1, 37), targets[:, 8:].reshape(-1)))
    assert model(idx[:, :5])[0].shape == (3, 5, 37)  # shorter than block_size is fine
    assert_close(model(idx.int())[0], model(idx)[0])  # int32 ids work too
    assert_close(model(idx.to(torch.uint8))[0], model(idx)[0])


@pytest.mark.parametrize(("positional", "norm", "mlp"), COMBOS)
def test_every_combo_forward_backward(positional, norm, mlp):
    model = make(positional=positional, norm=norm, mlp=mlp, dropout=0.1).train()
    _, loss = model(rand_idx(), rand_idx(seed=2))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.h[0].mlp.c_proj.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kw", [{"bias": False}, {"tie_weights": False}, {"mlp_ratio": 2}])
def test_other_options_forward_backward(kw):
    model = make(**kw)
    _, loss = model(rand_idx(), rand_idx(seed=2))
    loss.backward()
    assert torch.isfinite(loss)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_naive_equals_sdpa(positional):
    naive = make(positional=positional, attn_impl="naive")
    sdpa = make(positional=positional, attn_impl="sdpa")
    sdpa.load_state_dict(naive.state_dict())
    idx = rand_idx()
    with torch.no_grad():
        assert_close(naive(idx)[0], sdpa(idx)[0], **TOL)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
@pytest.mark.parametrize("chunks", [(5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), (1, 4, 3, 8)])
def test_cached_decoding_equals_full_forward(positional, chunks):
    model = make(positional=positional)
    idx = rand_idx()
    with torch.no_grad():
        full, _ = model(idx)
        caches = model.new_kv_caches()
        assert len(caches) == 2 and all(isinstance(c, KVCache) for c in caches)
        parts, start = [], 0
        for n in chunks:
            parts.append(model(idx[:, start:start + n], kv_caches=caches)[0])
            start += n
            assert caches[0].pos == start
    assert_close(torch.cat(parts, dim=1), full, **TOL)


def test_cache_errors():
    model = make()
    with pytest.raises(ValueError, match=r"one cache per layer \(2\), got 1"):
        model(rand_idx(T=4), kv_caches=[KVCache()])
    caches = model.new_kv_caches()
    with torch.no_grad():
        model(rand_idx(T=12), kv_caches=caches)
        with pytest.raises(ValueError, match=r"block_size = 16.*idx\[:, -block_size:\]"):
            model(rand_idx(T=5), kv_caches=caches)


def test_bad_inputs():
    model = make()
    with pytest.raises(ValueError, match=r"T = 17 tokens, but block_size = 16.*idx\[:, -block_size:\]"):
        model(rand_idx(T=17))
    idx = rand_idx()
    idx[1, 3] = 37
    with pytest.raises(ValueError, match=r"token id 37 is outside the vocabulary \[0, 37\)"):
        model(idx)
    idx[1, 3] = -2
    with pytest.raises(ValueError, match=r"token id -2 .*vocab_size=37"):
        model(idx)
    with pytest.raises(ValueError, match=r"\(B, T\).*idx\[None\]"):
        model(rand_idx()[0])
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"integer token ids, got dtype torch.float32.*idx.long"):
        model(rand_idx().float())
    with pytest.raises(ValueError, match=r"targets must be integer token ids shaped like idx"):
        model(rand_idx(), rand_idx()[:, :5])
    with pytest.raises(ValueError, match=r"targets must be integer"):
        model(rand_idx(), rand_idx().float())
    bad_t = rand_idx()
    bad_t[0, 0] = -100
    with pytest.raises(ValueError, match=r"target -100 is outside.*use -1"):
        model(rand_idx(), bad_t)


# ---------------------------------------------------------------------------- save / load


def assert_same_model(a: GPT, b: GPT) -> None:
    assert a.config == b.config
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    idx = rand_idx(V=a.config.vocab_size)
    with torch.no_grad():
        assert torch.equal(a.eval()(idx)[0], b.eval()(idx)[0])


@pytest.mark.parametrize("kw", [{}, {"positional": "rope", "norm": "rmsnorm", "mlp": "swiglu"},
                                {"positional": "sinusoidal", "tie_weights": False,
                                 "bias": False}])
def test_save_load_round_trip(tmp_path, kw):
    model = make(**kw)
    model.save(tmp_path / "ckpt")
    assert sorted(os.listdir(tmp_path / "ckpt")) == ["config.json", "model.safetensors"]
    loaded = GPT.load(tmp_path / "ckpt")
    assert_same_model(model, loaded)
    assert (loaded.lm_head.weight is loaded.wte.weight) == model.config.tie_weights
    tensors = load_file(tmp_path / "ckpt" / "model.safetensors")
    assert ("lm_head.weight" in tensors) == (not model.config.tie_weights)
    meta = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert meta["format"] == "gptlab" and meta["format_version"] == 1
    assert meta["config"] == model.config.to_dict()


def test_save_load_keeps_dtype_and_overwrites(tmp_path):
    model = make().to(torch.bfloat16)
    model.save(tmp_path)
    model.save(tmp_path)  # overwriting a good save is fine
    loaded = GPT.load(str(tmp_path), map_location=torch.device("cpu"))
    assert loaded.wte.weight.dtype == torch.bfloat16
    assert_same_model(model, loaded)


def test_save_is_atomic(tmp_path, monkeypatch):
    make(seed=0).save(tmp_path)
    before = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(model_module, "save_file", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        make(seed=1).save(tmp_path)
    after = {f: (tmp_path / f).read_bytes() for f in os.listdir(tmp_path)}
    assert after == before  # the old files, whole, and no temporary files left behind


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json not found.*model.save"):
        GPT.load(tmp_path / "nowhere")
    model = make()
    model.save(tmp_path / "a")
    (tmp_path / "a" / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model.safetensors not found"):
        GPT.load(tmp_path / "a")

    def saved_then_edit(name, **changes):
        folder = tmp_path / name
        model.save(folder)
        meta = json.loads((folder / "config.json").read_text())
        meta["config"].update(changes)
        (folder / "config.json").write_text(json.dumps(meta))
        return folder

    with pytest.raises(ValueError, match=r"'wte.weight'.*shape \(37, 32\).*expects \(40, 32\)"):
        GPT.load(saved_then_edit("b", vocab_size=40))
    with pytest.raises(ValueError, match=r"missing tensors \[\].*unexpected tensors \['wpe.weight'\]"):
        GPT.load(saved_then_edit("c", positional="rope"))
    with pytest.raises(ValueError, match=r"missing tensors \['lm_head.weight'\]"):
        GPT.load(saved_then_edit("d", tie_weights=False))
    with pytest.raises(ValueError, match=r"Unknown GPTConfig keys \['heads'\]"):
        GPT.load(saved_then_edit("e", heads=3))
    # a Hugging Face folder gets a pointer to the right loader
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    save_file({"x": torch.zeros(1)}, folder / "model.safetensors")
    with pytest.raises(ValueError, match=r"from_hf_gpt2"):
        GPT.load(folder)
