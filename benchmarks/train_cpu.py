"""CPU training quality: best validation loss reachable in a fixed wall-clock budget.

Trains two character-level models on tinyshakespeare with the same budget (default 140 s)
in one process: the reference, a well-known minimal GPT trainer's CPU recipe (nanoGPT's
"baby Shakespeare on a MacBook": 4 layers, 4 heads, width 128, context 64, batch 12, 2,000
steps, lr 1e-3, dropout 0), and the course's default CPU recipe (the ``cpu-char`` preset
with its recipe from ``gptlab.train_cli.RECIPES``, also used by lesson 08). Both are scored
the same way: mean loss over the whole held-out 10% split (non-overlapping windows of each
model's context), so the figures compare directly.

    python benchmarks/train_cpu.py            # about 5 minutes
    python benchmarks/train_cpu.py --smoke    # seconds: checks that it runs
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from gptlab.config import GPTConfig
from gptlab.data import load_corpus, train_val_split
from gptlab.evaluate import evaluate
from gptlab.model import GPT
from gptlab.tokenizers import CharTokenizer
from gptlab.train import TrainConfig, train
from gptlab.train_cli import RECIPES

REFERENCE = {
    "model": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, dropout=0.0, bias=False),
    "train": dict(batch_size=12, max_steps=2000, lr=1e-3, min_lr=1e-4, warmup_steps=100,
                  lr_decay_steps=2000, betas=(0.9, 0.99), weight_decay=0.1, grad_clip=1.0,
                  eval_interval=250, eval_batches=20),
}


def course_recipe() -> dict:
    return {"model": dict(GPTConfig.preset("cpu-char").to_dict()), "train": dict(RECIPES["cpu-char"])}


def run(name: str, recipe: dict, train_ids, val_ids, vocab_size: int, budget_s: float,
        smoke: bool) -> dict:
    model_cfg = {**recipe["model"], "vocab_size": vocab_size}
    train_cfg = dict(recipe["train"])
    if smoke:
        train_cfg.update(max_steps=3, eval_interval=2, eval_batches=2, warmup_steps=1)
    torch.manual_seed(1337)
    model = GPT(GPTConfig(**{k: v for k, v in model_cfg.items()}))
    start = time.perf_counter()
    result = train(model, train_ids, val_ids, TrainConfig(**train_cfg, max_time=budget_s, eval_at_start=False,
                                                          device="cpu", progress=False))
    train_s = time.perf_counter() - start
    val = evaluate(model, val_ids if not smoke else val_ids[:4096], batch_size=32,
                   progress=False)
    print(f"{name:10s} steps={result.step:5d} train_s={train_s:6.1f} "
          f"tokens/s={result.tokens_per_s:8.0f} val_loss(full split)={val.loss:.4f} "
          f"params={model.num_params():,}", flush=True)
    return {"val": val.loss, "train_s": train_s, "steps": result.step,
            "tok_s": result.tokens_per_s}


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
        res["ref"] = run("reference", REFERENCE, train_ids, val_ids, tok.vocab_size, budget,
                         args.smoke)
    if args.only != "ref":
        res["ours"] = run("gptlab", course_recipe(), train_ids, val_ids, tok.vocab_size, budget,
                          args.smoke)
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
