"""CPU training quality: best validation loss reachable in a fixed wall-clock budget.

Trains two character-level models on tinyshakespeare with the same budget (default 140 s)
in one process: the reference, a well-known minimal GPT trainer's CPU recipe (nanoGPT's
"baby Shakespeare on a MacBook": 4 layers, 4 heads, width 128, context 64, batch 12, 2,000
steps, lr 1e-3, dropout 0), and the course's default CPU recipe, run exactly as a user runs
it: ``gptlab train --preset cpu-char --max-time 140`` (the recipe in
``gptlab.train_cli.RECIPES``, also lesson 08's main run: its learning-rate schedule is sized
to the steps that fit in the budget, timed on this machine just before). The wall time
reported for it includes that timing, loading the corpus and saving the checkpoint. Both are scored
the same way: mean loss over the whole held-out 10% split (non-overlapping windows of each
model's context), so the figures compare directly.

    python benchmarks/train_cpu.py            # about 5 minutes
    python benchmarks/train_cpu.py --smoke    # seconds: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from gptlab import cli
from gptlab.checkpoint import read_train_state
from gptlab.config import GPTConfig
from gptlab.data import load_corpus, train_val_split
from gptlab.evaluate import evaluate
from gptlab.model import GPT
from gptlab.tokenizers import CharTokenizer
from gptlab.train import TrainConfig, train

REFERENCE = {
    "model": {"n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64, "dropout": 0.0,
              "bias": False},
    "train": {"batch_size": 12, "max_steps": 2000, "lr": 1e-3, "min_lr": 1e-4,
              "warmup_steps": 100, "lr_decay_steps": 2000, "betas": (0.9, 0.99),
              "weight_decay": 0.1, "grad_clip": 1.0, "eval_interval": 250, "eval_batches": 20},
}


def run_reference(train_ids, val_ids, vocab_size: int, budget_s: float, smoke: bool) -> dict:
    """nanoGPT's CPU recipe, through gptlab.train."""
    train_cfg = dict(REFERENCE["train"])
    if smoke:
        train_cfg.update(max_steps=3, eval_interval=2, eval_batches=2, warmup_steps=1)
    torch.manual_seed(1337)
    model = GPT(GPTConfig(**REFERENCE["model"], vocab_size=vocab_size))
    start = time.perf_counter()
    result = train(model, train_ids, val_ids, TrainConfig(**train_cfg, max_time=budget_s,
                                                          eval_at_start=False, device="cpu",
                                                          progress=False))
    return score("reference", model, result.step, time.perf_counter() - start, val_ids, smoke)


def run_course(budget_s: float, val_ids, smoke: bool) -> dict:
    """The course's recipe exactly as a user runs it: `gptlab train --preset cpu-char`, with
    the time budget as its --max-time (the schedule is sized to the steps that fit)."""
    out = Path(tempfile.mkdtemp()) / "cpu-char"
    argv = ["train", "--preset", "cpu-char", "--data", "tinyshakespeare", "--out", str(out),
            "--device", "cpu", "--no-progress", "--max-time", str(budget_s)]
    if smoke:
        argv += ["--max-steps", "3", "--eval-batches", "2", "--warmup-steps", "1"]
    start = time.perf_counter()
    if cli.main(argv) != 0:
        raise SystemExit("gptlab train failed")
    wall = time.perf_counter() - start
    steps = read_train_state(out)["step"]
    res = score("gptlab", GPT.load(out), steps, wall, val_ids, smoke)
    shutil.rmtree(out.parent, ignore_errors=True)
    return res


def score(name: str, model: GPT, steps: int, wall_s: float, val_ids, smoke: bool) -> dict:
    """Mean loss over the whole held-out split (non-overlapping windows of the model's context)."""
    val = evaluate(model, val_ids if not smoke else val_ids[:4096], batch_size=32,
                   progress=False)
    print(f"{name:10s} steps={steps:5d} wall_s={wall_s:6.1f} val_loss(full split)={val.loss:.4f} "
          f"params={model.num_params():,}", flush=True)
    return {"val": val.loss, "train_s": wall_s, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--budget", type=float, default=140.0, help="seconds per run")
    parser.add_argument("--only", choices=["ours", "ref"], help="run one recipe (for tuning)")
    args = parser.parse_args()

    text = load_corpus("tinyshakespeare")
    tok = CharTokenizer(text)
    train_text, val_text = train_val_split(text, 0.1)  # nanoGPT's split: first 90% / last 10%
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    budget = 2.0 if args.smoke else args.budget
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f}, budget {budget:.0f} s per run", flush=True)

    res = {}
    if args.only != "ours":
        res["ref"] = run_reference(train_ids, val_ids, tok.vocab_size, budget, args.smoke)
    if args.only != "ref":
        res["ours"] = run_course(budget, val_ids, args.smoke)
    fields = []
    for key in ("ours", "ref"):
        if key in res:
            prefix = "" if key == "ours" else "ref_"
            fields += [f"{prefix}val_loss={res[key]['val']:.4f}",
                       f"{prefix}train_s={res[key]['train_s']:.1f}",
                       f"{prefix}steps={res[key]['steps']}"]
    if len(res) == 2:
        fields.append(f"val_loss_ratio={res['ours']['val'] / res['ref']['val']:.3f}")
    fields.append(f"load_avg={os.getloadavg()[0]:.2f}")
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
