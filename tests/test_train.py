"""Tests for gptlab.train and its parts: config, schedule, optimizer groups, the loop, logs,
checkpoints (atomic, resumable in a new process), NaN handling, MFU, bad input, and DDP under
torchrun (gloo, CPU).

All runs use a 1-layer model of 16 dimensions on a short text and one CPU thread: seconds."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gptlab import checkpoint
from gptlab.callbacks import Callback, read_log
from gptlab.metrics import mfu, peak_flops
from gptlab.model import GPT, GPTConfig
from gptlab.schedule import configure_optimizer, lr_at, schedule_params
from gptlab.tokenizers import CharTokenizer, load_tokenizer
from gptlab.train import TrainConfig, Trainer, TrainingDiverged, train

TEXT = "the quick brown fox jumps over the lazy dog. " * 40
TOK = CharTokenizer(TEXT)
IDS = torch.tensor(TOK.encode(TEXT))
TR, VA = IDS[:1600], IDS[1600:]
MODEL = {"vocab_size": TOK.vocab_size, "block_size": 16, "n_layer": 1, "n_head": 2,
         "n_embd": 16}
FAST = {"batch_size": 4, "eval_batches": 2, "progress": False, "warmup_steps": 2}
ROOT = Path(__file__).resolve().parent.parent


def tiny(seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(**{**MODEL, **kw}))


def cfg(**kw) -> TrainConfig:
    return TrainConfig(**{**FAST, **kw})


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _subprocess_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


# ---------------------------------------------------------------- config, schedule, optimizer


@pytest.mark.parametrize("kw, match", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"max_steps": 1.5}, "max_steps must be a positive integer"),
    ({"grad_accum": True}, "grad_accum"),
    ({"lr": 0}, "lr must be a positive number"),
    ({"lr": float("nan")}, "lr must be a positive number"),
    ({"min_lr": 1.0, "lr": 0.1}, "min_lr must be between 0 and lr"),
    ({"warmup_steps": -1}, "warmup_steps must be a non-negative integer"),
    ({"betas": (0.9,)}, "betas must be two numbers"),
    ({"grad_clip": -1}, "grad_clip must be a number >= 0"),
    ({"max_time": 0}, "max_time must be a positive number"),
    ({"dtype": "half"}, "dtype must be one of"),
    ({"log_formats": ("xml",)}, "unknown log format"),
    ({"resume": True, "overwrite": True}, "contradict"),
    ({"compile": "yes"}, "compile must be True or False"),
])
def test_config_is_checked(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_config_round_trips_through_json():
    c = TrainConfig(betas=[0.9, 0.99], out_dir=Path("runs/x"), log_formats=["jsonl", "csv"])
    assert c.betas == (0.9, 0.99) and c.out_dir == str(Path("runs/x"))
    assert TrainConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown TrainConfig keys"):
        TrainConfig.from_dict({"learning_rate": 1})


def test_lr_schedule_shape():
    c = TrainConfig(lr=1.0, min_lr=0.1, warmup_steps=10, lr_decay_steps=100, max_steps=120)
    lrs = [lr_at(s, c) for s in range(120)]
    assert 0 < lrs[0] < lrs[5] < lrs[9] < 1.0  # linear warmup, never 0
    assert lrs[1] - lrs[0] == pytest.approx(lrs[9] - lrs[8])
    assert lrs[10] == pytest.approx(1.0)  # the peak, then cosine down
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:101]))
    assert lrs[55] == pytest.approx(0.55)  # half way through the cosine: the middle
    assert lrs[100:] == [0.1] * 20  # then min_lr
    d = TrainConfig(lr=6e-4, max_steps=50)  # defaults: lr / 10, max_steps // 10, max_steps
    assert schedule_params(d) == (6e-4, pytest.approx(6e-5), 5, 50)
    assert schedule_params(TrainConfig(max_steps=5000))[2] == 100
    assert lr_at(49, d) == pytest.approx(6e-5, rel=0.02) and lr_at(50, d) == pytest.approx(6e-5)
    e = TrainConfig(lr=1.0, warmup_steps=0, lr_decay_steps=10, max_steps=10)
    assert lr_at(0, e) == 1.0


def test_configure_optimizer_decays_only_matrices():
    m = tiny()
    opt = configure_optimizer(m, TrainConfig(weight_decay=0.1, betas=(0.8, 0.9)))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2
                                                                for p in no_decay["params"])
    assert any(p is m.wte.weight for p in decay["params"])  # embeddings decay, as in nanoGPT
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == m.num_params()
    assert decay["betas"] == (0.8, 0.9) and decay["fused"]  # fused kernel on the CPU too
    for p in m.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        configure_optimizer(m, TrainConfig())


def test_mfu_is_none_on_cpu_and_peaks_match_gpu_names():
    assert peak_flops("cpu") is None and peak_flops() is None
    for name, peak in [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                       ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12),
                       ("NVIDIA L4", 121e12), ("NVIDIA L40S", 362e12), ("Tesla T4", 65e12),
                       ("NVIDIA GeForce RTX 4090", 165e12), ("NVIDIA GeForce RTX 3090", 71e12),
                       ("Some Future GPU", None)]:
        assert peak_flops(name=name) == peak, name
    assert mfu(6e9, 1e4, 1e15) == pytest.approx(0.06)
    assert mfu(6e9, 1e4, 1e15, n_devices=2) == pytest.approx(0.03)
    assert mfu(6e9, 1e4, None) is None


# ---------------------------------------------------------------- the loop


def test_loss_decreases_and_everything_is_reported():
    records = []
    m = tiny()
    r = train(m, TR, VA, cfg(max_steps=60, eval_interval=30, lr=3e-3, log_interval=7),
              callbacks=[records.append])
    assert r.step == 60 and r.stopped_by == "max_steps" and r.out_dir is None
    assert [e["step"] for e in r.evals] == [0, 30, 60]
    start, end = r.evals[0], r.evals[-1]
    assert start["val_loss"] == pytest.approx(math.log(TOK.vocab_size), abs=0.3)  # untrained
    assert end["val_loss"] < start["val_loss"] - 0.5 and end["train_loss"] < start["train_loss"]
    assert r.val_loss == end["val_loss"] and r.best_val_loss == min(e["val_loss"]
                                                                    for e in r.evals)
    assert [s for s, _ in r.losses] == list(range(1, 61))
    train_recs = [x for x in records if x["kind"] == "train"]
    assert [x["step"] for x in train_recs] == list(range(1, 61))
    assert all(x["mfu"] is None and x["tokens_per_s"] > 0 and x["grad_norm"] > 0
               for x in train_recs)  # no MFU claimed on a CPU
    assert r.mfu is None and r.tokens_per_s > 0
    assert train_recs[0]["lr"] == lr_at(0, cfg(max_steps=60, lr=3e-3))
    assert next(iter(m.parameters())).requires_grad and m.training


def test_grad_accum_equals_one_big_batch():
    """2 micro-batches of 4 windows draw the same 8 windows as 1 batch of 8; same update."""
    a, b = tiny(), tiny()
    ra = train(a, TR, None, cfg(batch_size=4, grad_accum=2, max_steps=4, eval_interval=4))
    rb = train(b, TR, None, cfg(batch_size=8, grad_accum=1, max_steps=4, eval_interval=4))
    assert [x for _, x in ra.losses] == pytest.approx([x for _, x in rb.losses], abs=1e-6)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5)
    assert ra.val_loss is None and ra.train_loss is not None  # no val data: train loss only


def test_max_time_stops_evaluates_and_saves(tmp_path):
    r = train(tiny(), TR, VA, cfg(max_steps=1000, max_time=1e-9, eval_interval=500,
                                  out_dir=tmp_path))
    assert r.stopped_by == "max_time" and r.step == 1
    assert r.evals[-1]["step"] == 1 and checkpoint.read_train_state(tmp_path)["step"] == 1


def test_fp16_autocast_keeps_a_grad_scaler_in_the_checkpoint(tmp_path):
    """dtype='fp16' (here on the CPU) scales the loss; the scaler's state is checkpointed."""
    r = train(tiny(), TR, None, cfg(max_steps=3, eval_interval=3, dtype="fp16", out_dir=tmp_path))
    assert math.isfinite(r.train_loss)
    scaler = torch.load(tmp_path / "optimizer.pt", weights_only=True)["scaler"]
    assert scaler["scale"] > 1 and scaler["_growth_tracker"] == 3
    r = train(tiny(), TR, None, cfg(max_steps=4, dtype="fp16", out_dir=tmp_path, resume=True))
    assert r.step == 4


def test_live_plot_and_figures(tmp_path):
    from gptlab.viz.training import LivePlot, plot_losses, plot_lr_schedule

    live = LivePlot(min_interval_s=0.0)
    train(tiny(), TR, VA, cfg(max_steps=4, eval_interval=2, out_dir=tmp_path),
          callbacks=[live])
    assert live.figure is not None and len(live.ax.lines) == 3  # batch, train, val loss
    assert len(plot_losses(tmp_path / "log.jsonl").axes[0].lines) == 3
    fig = plot_lr_schedule(TrainConfig(max_steps=50, warmup_steps=5))
    assert len(fig.axes[0].lines[0].get_xdata()) == 50
    import matplotlib.pyplot as plt

    plt.close("all")


# ---------------------------------------------------------------- checkpoints


def test_checkpoint_folder_is_a_model_and_a_run(tmp_path):
    m = tiny()
    train(m, TR, VA, cfg(max_steps=4, eval_interval=2, out_dir=tmp_path,
                         log_formats=("jsonl", "csv")), tokenizer=TOK)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json", "log.csv", "log.jsonl", "model.safetensors", "optimizer.pt",
        "tokenizer.json", "train_state.json"]
    loaded = GPT.load(tmp_path)  # the checkpoint folder is a model folder
    for (k, p), q in zip(m.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(p, q), k
    opt = torch.load(tmp_path / "optimizer.pt", weights_only=True)  # no pickle needed
    assert set(opt) == {"ckpt_id", "optimizer", "scaler"} and opt["scaler"] is None
    state = json.loads((tmp_path / "train_state.json").read_text())
    assert state["step"] == 4 and state["tokens_seen"] == 4 * 4 * 16
    assert state["train_config"]["max_steps"] == 4 and state["world_size"] == 1
    assert state["best_val_loss"] == pytest.approx(state["last_eval"]["val_loss"])
    assert set(state["rng"]) == {"batches", "per_rank", "python", "numpy"}
    assert load_tokenizer(tmp_path / "tokenizer.json").encode("fox") == TOK.encode("fox")
    log = read_log(tmp_path / "log.jsonl")
    assert [r["step"] for r in log if r["kind"] == "eval"] == [0, 2, 4]
    assert (tmp_path / "log.csv").read_text().count("\n") == 1 + len(log)


RESUME_SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    from gptlab.model import GPT, GPTConfig
    from gptlab.train import TrainConfig, train
    args = json.loads(open(sys.argv[1]).read())
    ids = torch.tensor(args["ids"])
    torch.manual_seed(999)  # any initial weights: resuming replaces them
    model = GPT(GPTConfig(**args["model"]))
    train(model, ids[:1600], ids[1600:], TrainConfig(**args["cfg"]))
""")


def test_resume_in_a_new_process_continues_exactly(tmp_path):
    """6 steps straight == 3 steps, checkpoint, a new process resumes, 3 more steps: the same
    parameters bit for bit (data order, dropout masks and AdamW moments all restored)."""
    kw = {**FAST, "eval_interval": 3, "lr_decay_steps": 6, "lr": 3e-3}
    ref, run = tmp_path / "ref", tmp_path / "run"
    train(tiny(dropout=0.1), TR, VA, TrainConfig(**kw, max_steps=6, out_dir=str(ref)))
    train(tiny(dropout=0.1), TR, VA, TrainConfig(**kw, max_steps=3, out_dir=str(run)))
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ids": IDS.tolist(), "model": {**MODEL, "dropout": 0.1},
                                "cfg": {**kw, "max_steps": 6, "out_dir": str(run),
                                        "resume": True}}))
    subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(args)], check=True,
                   env=_subprocess_env(), timeout=300)
    a, b = load_file(ref / "model.safetensors"), load_file(run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    oa = torch.load(ref / "optimizer.pt", weights_only=True)["optimizer"]["state"]
    ob = torch.load(run / "optimizer.pt", weights_only=True)["optimizer"]["state"]
    assert all(torch.equal(oa[i]["exp_avg_sq"], ob[i]["exp_avg_sq"]) for i in oa)
    sa, sb = checkpoint.read_train_state(ref), checkpoint.read_train_state(run)
    assert sa["step"] == sb["step"] == 6 and sa["best_val_loss"] == sb["best_val_loss"]
    assert sa["rng"] == sb["rng"]
    log = read_log(run / "log.jsonl")  # the resumed run appended; nothing repeated
    assert [r["step"] for r in log if r["kind"] == "train"] == [1, 2, 3, 4, 5, 6]
    assert [r["step"] for r in log if r["kind"] == "eval"] == [0, 3, 6]


def test_crash_between_renames_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    train(tiny(), TR, VA, cfg(max_steps=2, eval_interval=2, out_dir=tmp_path), tokenizer=TOK)
    before = files(tmp_path)
    real_replace = os.replace

    def crash_on_second_file(src, dst):
        if Path(dst).name == "config.json":  # the 2nd file of a save: the 1st is renamed
            raise OSError("simulated crash")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crash_on_second_file)
    with pytest.raises(OSError, match="simulated crash"):
        train(tiny(), TR, VA, cfg(max_steps=4, eval_interval=2, out_dir=tmp_path, resume=True),
              tokenizer=TOK)
    monkeypatch.setattr(os, "replace", real_replace)
    after = files(tmp_path)
    assert {k: v for k, v in after.items() if k != "log.jsonl"} == \
        {k: v for k, v in before.items() if k != "log.jsonl"}  # no temp file, no mix
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no .previous left
    assert checkpoint.load_checkpoint(tmp_path)["train_state"]["step"] == 2
    GPT.load(tmp_path)


def test_a_save_killed_half_way_is_repaired_on_load(tmp_path):
    """A process killed between two renames leaves a mix; loading puts .previous back."""
    train(tiny(), TR, VA, cfg(max_steps=2, eval_interval=2, out_dir=tmp_path / "a"))
    train(tiny(), TR, VA, cfg(max_steps=4, eval_interval=4, out_dir=tmp_path / "b"))
    a = tmp_path / "a"
    before = files(a)
    (a / ".previous").mkdir()
    for name in ("model.safetensors", "optimizer.pt"):  # what the save had backed up ...
        os.link(a / name, a / ".previous" / name)
    os.replace(tmp_path / "b" / "model.safetensors", a / "model.safetensors")  # ... and renamed
    with pytest.warns(UserWarning, match="interrupted"):
        ck = checkpoint.load_checkpoint(a)
    assert ck["train_state"]["step"] == 2 and files(a) == before
    assert not (a / ".previous").exists()
    os.replace(tmp_path / "b" / "optimizer.pt", a / "optimizer.pt")  # a mix with no way back
    with pytest.raises(ValueError, match="do not belong together"):
        checkpoint.load_checkpoint(a)


class Poisoned(GPT):
    """A GPT whose training loss turns NaN from its ``bad_from``-th training forward on."""

    bad_from = 10**9

    def forward(self, idx, targets=None, kv_caches=None):
        logits, loss = super().forward(idx, targets, kv_caches)
        if self.training and loss is not None:
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls >= self.bad_from:
                loss = loss * float("nan")
        return logits, loss


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    m = Poisoned(GPTConfig(**MODEL))
    m.bad_from = 4
    with pytest.raises(TrainingDiverged) as err:
        train(m, TR, VA, cfg(max_steps=6, eval_interval=2, out_dir=tmp_path))
    msg = str(err.value)
    for part in ("step 4", "nan", "at step 3", "checkpoint (step 2)", "lower learning rate",
                 "grad_clip", "check the data"):
        assert part in msg, part
    assert checkpoint.read_train_state(tmp_path)["step"] == 2
    assert all(torch.isfinite(p).all() for p in GPT.load(tmp_path).parameters())
    with pytest.raises(TrainingDiverged, match="step 2: the loss is nan"):  # a real divergence
        train(tiny(), TR, None, cfg(max_steps=5, lr=1e9, grad_clip=0.0, warmup_steps=0,
                                    log_interval=1))


# ---------------------------------------------------------------- bad input, before training


@pytest.mark.parametrize("train_data, val_data, kw, error, match", [
    (None, VA, {}, ValueError, "train_data is missing"),
    (torch.zeros(0, dtype=torch.long), VA, {}, ValueError, "train_data is empty"),
    (IDS[:10], VA, {}, ValueError, r"train_data holds 10 tokens.*block_size \+ 1 = 17"),
    (TR, IDS[:5], {}, ValueError, "val_data holds 5 tokens"),
    (TR, VA, {"block_size": 32}, ValueError, "larger than the model's context"),
    (TR, VA, {"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
    (TR + 100, VA, {}, ValueError, "outside the model's vocabulary"),
    (TR.float(), VA, {}, ValueError, "integer token ids"),
    (TR, VA, {"resume": True}, ValueError, "resume=True needs out_dir"),
    (TR, VA, {"device": "tpu"}, ValueError, "Unknown device"),
])
def test_bad_input_is_reported_before_training(train_data, val_data, kw, error, match):
    m = tiny()
    before = [p.clone() for p in m.parameters()]
    with pytest.raises(error, match=match):
        train(m, train_data, val_data, cfg(max_steps=2, **kw))
    assert all(torch.equal(p, q) for p, q in zip(before, m.parameters()))


def test_bad_output_folders_are_reported_and_nothing_is_overwritten(tmp_path):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(PermissionError, match="cannot write checkpoints"):
        train(tiny(), TR, VA, cfg(max_steps=2, out_dir=a_file / "run"))
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(PermissionError, match="cannot write checkpoints"):
            train(tiny(), TR, VA, cfg(max_steps=2, out_dir=locked))
    with pytest.raises(FileNotFoundError, match="does not exist.*train_state.json is missing"):
        train(tiny(), TR, VA, cfg(max_steps=2, out_dir=tmp_path / "none", resume=True))
    assert not (tmp_path / "none").exists()
    tiny().save(tmp_path / "model_only")
    with pytest.raises(FileNotFoundError, match="holds a model but no training state"):
        train(tiny(), TR, VA, cfg(max_steps=2, out_dir=tmp_path / "model_only", resume=True))

    run = tmp_path / "run"
    train(tiny(), TR, VA, cfg(max_steps=2, eval_interval=2, out_dir=run))
    before = files(run)
    for model, kw, error, match in [
        (tiny(), {}, ValueError, r"already holds a checkpoint \(step 2\).*resume=True"),
        (tiny(n_embd=32), {"resume": True}, ValueError,
         "another architecture.*n_embd: checkpoint 16 vs model 32"),
        (tiny(), {"resume": True, "max_steps": 2}, ValueError, "already at step 2"),
    ]:
        with pytest.raises(error, match=match):
            train(model, TR, VA, cfg(**{"max_steps": 4, "out_dir": run, **kw}))
    with pytest.raises(ValueError, match="the tokenizer has 300 tokens"):
        train(tiny(), TR, VA, cfg(max_steps=4, out_dir=run, overwrite=True),
              tokenizer=type("Big", (), {"vocab_size": 300})())
    assert files(run) == before
    # resuming with another dropout is fine (no shapes change); overwrite starts again
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = train(tiny(dropout=0.1), TR, VA, cfg(max_steps=3, out_dir=run, resume=True))
    assert r.step == 3 and len(r.losses) == 1
    r = train(tiny(), TR, VA, cfg(max_steps=2, out_dir=run, overwrite=True))
    assert [s for s, _ in r.losses] == [1, 2]


def test_trainer_is_inert_until_fit(tmp_path):
    t = Trainer(tiny(), TR, VA, cfg(max_steps=2, out_dir=tmp_path / "x"))
    assert t.step == 0 and not checkpoint.has_checkpoint(tmp_path / "x")
    seen = []

    class Counter(Callback):
        def on_checkpoint(self, trainer, path):
            seen.append((trainer.step, path))

    t.callbacks.append(Counter())
    t.fit()
    assert seen == [(2, tmp_path / "x")]


# ---------------------------------------------------------------- DDP under torchrun

DDP_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    torch.set_num_threads(1)
    from gptlab.model import GPT, GPTConfig
    from gptlab.train import TrainConfig, train
    args = json.loads(open(sys.argv[1]).read())
    ids = torch.tensor(args["ids"])
    torch.manual_seed(0)
    model = GPT(GPTConfig(**args["model"]))
    r = train(model, ids[:1600], ids[1600:], TrainConfig(**args["cfg"]))
    if int(os.environ["RANK"]) == 0:
        with open(args["result"], "w") as f:
            json.dump({"losses": r.losses, "evals": r.evals,
                       "world": int(os.environ["WORLD_SIZE"])}, f)
""")


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_grad_accum(tmp_path):
    """2 ranks x 1 micro-batch (gloo) == 1 process x 2 micro-batches: same windows (see
    gptlab.batches.sample_step), gradients averaged by all-reduce instead of summed by
    accumulation. Equal up to float rounding: 1e-4 on losses and parameters after 5 steps."""
    kw = {**FAST, "max_steps": 5, "eval_interval": 5, "log_interval": 1, "lr": 3e-3,
          "device": "cpu"}
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ids": IDS.tolist(), "model": MODEL,
                                "result": str(tmp_path / "ddp.json"),
                                "cfg": {**kw, "grad_accum": 1, "out_dir": str(tmp_path / "ddp")}}))
    env = {k: v for k, v in _subprocess_env().items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    script = tmp_path / "ddp_script.py"
    script.write_text(DDP_SCRIPT)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", str(script), str(args)],
                          check=False, env=env, timeout=300, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert ddp["world"] == 2

    single = tiny()
    r = train(single, TR, VA, cfg(**{**kw, "grad_accum": 2}))
    assert [s for s, _ in ddp["losses"]] == [1, 2, 3, 4, 5]
    assert [x for _, x in ddp["losses"]] == pytest.approx([x for _, x in r.losses], abs=1e-4)
    assert ddp["evals"][-1]["val_loss"] == pytest.approx(r.val_loss, abs=1e-4)
    ddp_model = GPT.load(tmp_path / "ddp")  # rank 0 wrote the checkpoint
    for p, q in zip(single.parameters(), ddp_model.parameters()):
        torch.testing.assert_close(p, q, atol=1e-4, rtol=0)
    state = checkpoint.read_train_state(tmp_path / "ddp")
    assert state["world_size"] == 2 and len(state["rng"]["per_rank"]) == 2


def test_steps_for_time_leaves_model_and_random_state_alone():
    from gptlab.train import steps_for_time

    ids = torch.randint(0, 16, (2000,))
    model = GPT(GPTConfig.preset("tiny", vocab_size=16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.random.get_rng_state()
    n = steps_for_time(model, ids, TrainConfig(batch_size=4, block_size=16, device="cpu"), 2.0)
    assert isinstance(n, int) and n >= 1
    torch.testing.assert_close(model.state_dict(), before)
    assert torch.equal(torch.random.get_rng_state(), rng)
    with pytest.raises(ValueError, match="seconds must be a positive number"):
        steps_for_time(model, ids, TrainConfig(), 0)


@pytest.mark.parametrize("script", ["train_cpu.py", "train_gpu.py"])
def test_benchmark_scripts_run_in_smoke_mode(script, monkeypatch, capsys):
    """The benchmarks are not timed here, only kept runnable (--smoke: a few steps)."""
    import runpy

    monkeypatch.setattr(sys, "argv", [script, "--smoke"])
    runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
    assert "RESULT " in capsys.readouterr().out
