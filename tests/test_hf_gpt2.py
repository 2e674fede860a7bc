"""GPT-2 interop against the reference: transformers' GPT2LMHeadModel, built locally from a
GPT2Config (never downloaded)."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from gptlab.hf_gpt2 import config_from_hf, config_to_hf
from gptlab.model import GPT, GPTConfig

transformers = pytest.importorskip("transformers")

TOL = {"atol": 1e-4, "rtol": 0.0}
SHAPES = [
    {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_positions": 16, "vocab_size": 50},
    {"n_embd": 48, "n_layer": 2, "n_head": 4, "n_positions": 32, "vocab_size": 97,
     "layer_norm_epsilon": 1e-6},
    {"n_embd": 64, "n_layer": 3, "n_head": 8, "n_positions": 24, "vocab_size": 128,
     "activation_function": "gelu", "n_inner": 128},
]


def hf_model(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = transformers.GPT2Config(bos_token_id=0, eos_token_id=0, **kw)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # random LayerNorm and bias values too, so every tensor matters
        for name, p in model.named_parameters():
            if "ln_" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.1)
    return model


def tokens(V, T, B=3, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def assert_same_logits(hf, ours, V, T):
    idx = tokens(V, T)
    with torch.no_grad():
        ref = hf(idx).logits
        got, _ = ours.eval()(idx)
    torch.testing.assert_close(got, ref, **TOL)


@pytest.mark.parametrize("shape", SHAPES, ids=["1L", "2L-eps", "3L-gelu-ninner"])
def test_import_safetensors_matches_transformers(tmp_path, shape):
    hf = hf_model(**shape)
    hf.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    ours = GPT.from_hf_gpt2(tmp_path)
    cfg = ours.config
    assert (cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.block_size, cfg.vocab_size) == (
        shape["n_layer"], shape["n_head"], shape["n_embd"], shape["n_positions"],
        shape["vocab_size"])
    assert cfg.norm_eps == shape.get("layer_norm_epsilon", 1e-5)
    assert cfg.mlp == ("gelu_exact" if shape.get("activation_function") == "gelu" else "gelu")
    assert ours.lm_head.weight is ours.wte.weight
    assert_same_logits(hf, ours, shape["vocab_size"], shape["n_positions"])


def test_import_pytorch_bin_with_mask_buffers(tmp_path):
    """The older format: pytorch_model.bin (read with weights_only=True), holding the causal
    mask buffers attn.bias / attn.masked_bias and an lm_head.weight copy, as old GPT-2 files do."""
    shape = SHAPES[1]
    hf = hf_model(**shape)
    hf.save_pretrained(tmp_path)
    sd = dict(hf.state_dict())
    T = shape["n_positions"]
    for i in range(shape["n_layer"]):
        sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, T, T))
        sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    (tmp_path / "model.safetensors").unlink()
    torch.save(sd, tmp_path / "pytorch_model.bin")
    ours = GPT.from_hf_gpt2(tmp_path)
    assert_same_logits(hf, ours, shape["vocab_size"], T)


def test_import_without_transformer_prefix(tmp_path):
    """GPT2Model (no LM head) files have keys without the "transformer." prefix."""
    shape = SHAPES[0]
    hf = hf_model(**shape)
    hf.save_pretrained(tmp_path)
    tensors = {k.removeprefix("transformer."): v.contiguous()
               for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    save_file(tensors, tmp_path / "model.safetensors", metadata={"format": "pt"})
    assert_same_logits(hf, GPT.from_hf_gpt2(tmp_path), shape["vocab_size"], 16)


def test_import_sharded(tmp_path):
    shape = SHAPES[2]
    hf = hf_model(**shape)
    hf.save_pretrained(tmp_path, max_shard_size="50KB")
    if not (tmp_path / "model.safetensors.index.json").is_file():
        pytest.skip("this transformers version wrote a single file")
    assert_same_logits(hf, GPT.from_hf_gpt2(tmp_path), shape["vocab_size"], 24)


def test_import_overrides(tmp_path):
    hf_model(**SHAPES[0]).save_pretrained(tmp_path)
    ours = GPT.from_hf_gpt2(tmp_path, dropout=0.1, attn_impl="naive")
    assert ours.config.dropout == 0.1 and ours.config.attn_impl == "naive"


@pytest.mark.parametrize("kw", [{}, {"mlp": "gelu_exact", "mlp_ratio": 2, "norm_eps": 1e-6},
                                {"tie_weights": False}])
def test_export_round_trip(tmp_path, kw):
    torch.manual_seed(0)
    ours = GPT(GPTConfig(vocab_size=61, block_size=20, n_layer=2, n_head=4, n_embd=32, **kw))
    ours.to_hf_gpt2(tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["config.json", "model.safetensors"]
    hf, info = transformers.GPT2LMHeadModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert_same_logits(hf.eval(), ours, 61, 20)
    back = GPT.from_hf_gpt2(tmp_path)  # and back again: the very same tensors
    assert back.config == ours.config
    for k, v in ours.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def test_gpt2_preset_is_gpt2():
    """Our gpt2 preset writes the architecture fields of transformers' default GPT2Config."""
    ref = transformers.GPT2Config().to_dict()
    ours = config_to_hf(GPTConfig.preset("gpt2"))
    for key in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                "activation_function", "layer_norm_epsilon", "bos_token_id", "eos_token_id",
                "tie_word_embeddings", "scale_attn_weights"):
        assert ours[key] == ref[key], key
    assert config_from_hf(ref) == GPTConfig.preset("gpt2")


def test_export_rejects_non_gpt2_configs(tmp_path):
    model = GPT(GPTConfig(vocab_size=11, block_size=8, n_layer=1, n_head=2, n_embd=8,
                          positional="rope", norm="rmsnorm", mlp="swiglu", bias=False))
    with pytest.raises(ValueError, match=r"positional='rope'.*norm='rmsnorm'.*mlp='swiglu'.*"
                                         r"bias=False.*model.save"):
        model.to_hf_gpt2(tmp_path)
    assert not os.listdir(tmp_path)


def test_import_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config.json not found"):
        GPT.from_hf_gpt2(tmp_path)
    hf_model(**SHAPES[0]).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"No GPT-2 weights.*model.safetensors"):
        GPT.from_hf_gpt2(tmp_path)
    base = json.loads((tmp_path / "config.json").read_text())

    def bad(**changes):
        return config_from_hf({**base, **changes})

    with pytest.raises(ValueError, match=r"activation_function='relu'.*'gelu_new'"):
        bad(activation_function="relu")
    with pytest.raises(ValueError, match=r"model_type='llama'"):
        bad(model_type="llama")
    with pytest.raises(ValueError, match=r"scale_attn_by_inverse_layer_idx"):
        bad(scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(ValueError, match=r"n_inner=50.*multiple of n_embd=32"):
        bad(n_inner=50)
    with pytest.raises(ValueError, match=r"lacks \['n_head'\]"):
        config_from_hf({k: v for k, v in base.items() if k != "n_head"})


def test_import_shape_mismatch(tmp_path):
    hf_model(**SHAPES[0]).save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    meta["vocab_size"] = 51
    (tmp_path / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"'wte.weight'.*\(50, 32\).*\(51, 32\)"):
        GPT.from_hf_gpt2(tmp_path)
