"""gptlab.finetune: freezing, parameter counts, LoRA (init, counts, training, merging,
saving adapters), and the clear errors for bad input. Tiny models, one CPU thread."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from gptlab.evaluate import evaluate
from gptlab.finetune import (
    LoRALinear,
    apply_lora,
    freeze,
    load_lora,
    lora_modules,
    lora_state_dict,
    merge_lora,
    parameter_summary,
    remove_lora,
    save_lora,
    trainable_parameters,
    unfreeze,
)
from gptlab.model import GPT, GPTConfig
from gptlab.schedule import configure_optimizer
from gptlab.tokenizers import CharTokenizer
from gptlab.train import TrainConfig, train

TEXT = "the quick brown fox jumps over the lazy dog. " * 30
TOK = CharTokenizer(TEXT + "XYZ")
IDS = torch.tensor(TOK.encode(TEXT))
MODEL = {"vocab_size": TOK.vocab_size, "block_size": 16, "n_layer": 2, "n_head": 2,
         "n_embd": 16}
FAST = {"batch_size": 4, "eval_batches": 1, "progress": False, "warmup_steps": 0,
        "eval_interval": 1000, "log_interval": 5, "lr": 1e-2, "device": "cpu"}


def tiny(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**MODEL, **kw}))


def run(model: GPT, steps: int = 5, data: torch.Tensor = IDS, **kw) -> None:
    train(model, data, None, TrainConfig(**{**FAST, "max_steps": steps, **kw}))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


X = torch.tensor([TOK.encode("the lazy fox jum"), TOK.encode("over the quick b")])


# ---------------------------------------------------------------------------- freezing


def test_frozen_parameters_stay_bit_identical_through_training():
    m = tiny()
    frozen = freeze(m, layers=1)  # block 0 and the embeddings
    assert frozen[:2] == ["wte.weight", "wpe.weight"]
    assert {n for n in frozen if n.startswith("h.")} == {n for n, _ in m.named_parameters()
                                                         if n.startswith("h.0.")}
    assert not m.lm_head.weight.requires_grad  # tied to wte: one tensor
    before = snapshot(m)
    run(m, steps=4)
    after = m.state_dict()
    for k, v in before.items():
        if k.split(".")[0] in ("wte", "wpe", "lm_head") or k.startswith("h.0."):
            assert torch.equal(v, after[k]), k
        else:
            assert not torch.equal(v, after[k]), f"{k} should have trained"


def test_freeze_selections_and_unfreeze():
    m = tiny()
    total = m.num_params()
    assert freeze(m, layers=[-1]) == [n for n, _ in m.named_parameters() if n.startswith("h.1.")]
    unfreeze(m)
    assert trainable_parameters(m) == total
    frozen = freeze(m, names="*.ln_*")
    assert frozen and all(".ln_" in n for n in frozen)
    unfreeze(m)
    frozen = freeze(m, except_names=["ln_f.*", "h.1.mlp.*"])  # train only these
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    assert trainable == {"ln_f.weight", "ln_f.bias", "h.1.mlp.c_fc.weight", "h.1.mlp.c_fc.bias",
                         "h.1.mlp.c_proj.weight", "h.1.mlp.c_proj.bias"}
    assert len(frozen) + len(trainable) == len(list(m.parameters()))
    s = parameter_summary(m)
    assert s.trainable == trainable_parameters(m) == sum(p.numel() for n, p in
                                                        m.named_parameters() if n in trainable)
    assert s.total == total and s.frozen == total - s.trainable
    assert s.fraction == pytest.approx(s.trainable / total)
    assert s.groups["h.0"][0] == 0 and s.groups["ln_f"] == (32, 32)
    assert "trainable" in str(s) and "%" in str(s)
    assert unfreeze(m, names="h.0.*") and m.h[0].ln_1.weight.requires_grad
    # the optimizer sees only what trains
    opt = configure_optimizer(m, TrainConfig())
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == \
        trainable_parameters(m)


@pytest.mark.parametrize("kwargs, message", [
    ({"layers": 3}, "has 2 blocks"),
    ({"layers": [2]}, "out of range"),
    ({"names": "nope.*"}, "matches no parameter"),
    ({"except_names": ["h.9.*"]}, "matches no parameter"),
    ({"names": 3}, "glob pattern"),
])
def test_freeze_bad_input(kwargs, message):
    m = tiny()
    with pytest.raises(ValueError, match=message):
        freeze(m, **kwargs)
    assert trainable_parameters(m) == m.num_params()  # nothing was frozen
    with pytest.raises(TypeError, match="int or a list"):
        freeze(m, layers=True)


def test_training_a_fully_frozen_model_is_a_clear_error(tmp_path):
    m = tiny()
    freeze(m)
    assert trainable_parameters(m) == 0
    with pytest.raises(ValueError, match="no trainable parameters"):
        run(m, out_dir=str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()  # refused before anything was written


# ---------------------------------------------------------------------------- LoRA


def test_lora_at_init_leaves_outputs_unchanged_and_counts_match_the_formula():
    m = tiny()
    m.eval()
    before = m(X)[0]
    names = apply_lora(m, rank=4, alpha=8, targets=("attn.c_attn", "c_proj"))
    assert names == ["h.0.attn.c_attn", "h.0.attn.c_proj", "h.0.mlp.c_proj",
                     "h.1.attn.c_attn", "h.1.attn.c_proj", "h.1.mlp.c_proj"]
    assert torch.equal(m(X)[0], before)
    C = MODEL["n_embd"]
    sizes = {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_proj": (4 * C, C)}
    expected = sum(4 * (i + o) for n in names for s, (i, o) in sizes.items() if n.endswith(s))
    assert trainable_parameters(m) == expected  # rank * (in + out) per wrapped layer
    for mod in lora_modules(m).values():
        assert mod.lora_A.shape == (4, mod.in_features)
        assert mod.lora_B.shape == (mod.out_features, 4) and not mod.lora_B.any()
        assert not mod.weight.requires_grad and mod.lora_A.requires_grad
    sd = m.state_dict()  # base weights keep their names
    assert "h.0.attn.c_attn.weight" in sd and "h.0.attn.c_attn.lora_A" in sd
    assert set(lora_state_dict(m)) == {f"{n}.lora_{x}" for n in names for x in "AB"}


def test_lora_trains_only_adapters_merges_exactly_and_saves_as_a_plain_gpt(tmp_path):
    m = tiny()
    apply_lora(m, rank=2, alpha=4)
    base = {k: v for k, v in snapshot(m).items() if "lora_" not in k}
    run(m, steps=6)
    after = m.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in base.items())  # base weights untouched
    assert all(mod.lora_B.abs().sum() > 0 for mod in lora_modules(m).values())
    m.eval()
    with torch.no_grad():
        unmerged = m(X)[0]
        assert merge_lora(m) == ["h.0.attn.c_attn", "h.0.attn.c_proj", "h.1.attn.c_attn",
                                 "h.1.attn.c_proj"]
        assert_close(m(X)[0], unmerged, atol=1e-5, rtol=1e-5)
    assert not lora_modules(m) and type(m.h[0].attn.c_attn) is nn.Linear
    assert trainable_parameters(m) == m.num_params()  # what apply_lora froze learns again
    m.save(tmp_path / "merged")  # merged saving is just GPT.save
    loaded = GPT.load(tmp_path / "merged").eval()
    with torch.no_grad():
        assert_close(loaded(X)[0], unmerged, atol=1e-5, rtol=1e-5)


def test_saving_an_unmerged_lora_model_is_refused_with_the_fix(tmp_path):
    # The files would fit neither GPT.load nor transformers (which drops lora_A/B silently).
    m = tiny()
    apply_lora(m, rank=2)
    for save in (m.save, m.to_hf_gpt2):
        with pytest.raises(ValueError, match="merge_lora.*save_lora"):
            save(tmp_path / "out")
    assert not (tmp_path / "out").exists()  # nothing half written
    merge_lora(m)
    m.to_hf_gpt2(tmp_path / "hf")
    assert_close(GPT.from_hf_gpt2(tmp_path / "hf").state_dict(), m.state_dict())


def test_finetuning_with_lora_lowers_the_target_loss():
    m = tiny()
    run(m, steps=40)  # "pretraining": LoRA adapts a model that already knows something
    target = "dog lazy the over jumps fox brown quick the. " * 20  # same words, new order
    start = evaluate(m, target, TOK, progress=False).loss
    apply_lora(m, rank=4, alpha=8, targets=("attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                            "mlp.c_proj"))
    run(m, steps=30, data=torch.tensor(TOK.encode(target)))
    end = evaluate(m, target, TOK, progress=False).loss
    assert end < start - 0.1, (start, end)


def test_remove_lora_restores_the_base_model():
    m = tiny()
    freeze(m, names="h.0.*")
    flags = {n: p.requires_grad for n, p in m.named_parameters()}
    m.eval()
    before = m(X)[0]
    apply_lora(m, rank=2, alpha=2)
    with torch.no_grad():
        for mod in lora_modules(m).values():
            mod.lora_B.normal_()
    assert not torch.equal(m(X)[0], before)
    remove_lora(m)
    assert torch.equal(m(X)[0], before) and not lora_modules(m)
    assert {n: p.requires_grad for n, p in m.named_parameters() if "attn.c_" in n} == \
        {n: f for n, f in flags.items() if "attn.c_" in n}


def test_adapters_save_and_load_round_trip(tmp_path):
    m = tiny()
    apply_lora(m, rank=2, alpha=3, targets="attn.c_attn", dropout=0.1)
    run(m, steps=3)
    m.eval()
    out = m(X)[0]
    save_lora(m, tmp_path / "ad")
    assert sorted(p.name for p in (tmp_path / "ad").iterdir()) == ["adapter.safetensors",
                                                                   "adapter_config.json"]
    meta = json.loads((tmp_path / "ad" / "adapter_config.json").read_text())
    assert meta["rank"] == 2 and meta["alpha"] == 3 and meta["targets"] == \
        ["h.0.attn.c_attn", "h.1.attn.c_attn"]
    fresh = tiny().eval()  # the same base model
    assert load_lora(fresh, tmp_path / "ad") == ["h.0.attn.c_attn", "h.1.attn.c_attn"]
    assert torch.equal(fresh(X)[0], out)
    assert trainable_parameters(fresh) == trainable_parameters(m)
    again = tiny().eval()  # a model that already has matching adapters
    apply_lora(again, rank=2, alpha=3, targets="attn.c_attn")
    load_lora(again, tmp_path / "ad")
    assert torch.equal(again(X)[0], out)

    with pytest.raises(FileNotFoundError, match="save_lora"):
        load_lora(tiny(), tmp_path / "nowhere")
    with pytest.raises(ValueError, match="another base model"):
        load_lora(tiny(n_embd=32), tmp_path / "ad")
    other = tiny()
    apply_lora(other, rank=4, alpha=3, targets="attn.c_attn")
    with pytest.raises(ValueError, match="differ from the saved ones"):
        load_lora(other, tmp_path / "ad")
    with pytest.raises(ValueError, match="no LoRA adapters to save"):
        save_lora(tiny(), tmp_path / "none")


@pytest.mark.parametrize("kwargs, message", [
    ({"rank": 0}, "rank must be a positive integer"),
    ({"rank": 2.5}, "rank must be a positive integer"),
    ({"rank": 17}, r"h.0.attn.c_attn \(16 inputs, 48 outputs\).*min\(in, out\) = 16"),
    ({"alpha": 0}, "alpha must be a positive number"),
    ({"alpha": float("nan")}, "alpha must be a positive number"),
    ({"dropout": 1.0}, "dropout must be in"),
    ({"targets": ["attn.c_attn", "attn.query"]},
     r"'attn.query' matches no nn.Linear.*h.\*.attn.c_attn.*h.\*.mlp.c_fc.*lm_head"),
    ({"targets": []}, "targets must be"),
    ({"targets": "lm_head"}, "tied to wte.weight"),
])
def test_lora_bad_input(kwargs, message):
    m = tiny()
    with pytest.raises(ValueError, match=message):
        apply_lora(m, **kwargs)
    assert not lora_modules(m) and trainable_parameters(m) == m.num_params()  # untouched


def test_lora_twice_merge_without_lora_and_untied_lm_head():
    m = tiny()
    apply_lora(m)
    with pytest.raises(ValueError, match="already applied"):
        apply_lora(m, targets="mlp.c_fc")
    with pytest.raises(ValueError, match="no LoRA adapters to merge"):
        merge_lora(tiny())
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        LoRALinear(nn.Embedding(4, 4), rank=1)
    with pytest.raises(ValueError, match="rank=9 is too large.*8 inputs and 3 outputs"):
        LoRALinear(nn.Linear(8, 3), rank=9)
    untied = tiny(tie_weights=False)
    assert apply_lora(untied, rank=2, targets="lm_head") == ["lm_head"]
