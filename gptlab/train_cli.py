"""``gptlab train`` and ``gptlab sample``: the command-line front end of ``gptlab.train``.

    gptlab train --preset tiny --data python-stdlib --max-steps 200      # offline, a minute
    gptlab train --preset shakespeare-char                              # nanoGPT's run (GPU)
    gptlab train --preset shakespeare-char --resume --max-steps 8000     # continue it
    gptlab sample --ckpt runs/shakespeare-char --prompt "ROMEO:"

Under ``torchrun --nproc_per_node=N -m gptlab.cli train ...`` the run is data-parallel.
The parser imports nothing heavy: torch loads only when a command runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

# Training settings per preset (nanoGPT's for shakespeare-char); flags override them.
# The cpu-char recipe (lesson 08's main run) is tuned in benchmarks/train_cpu.py.
RECIPES: dict[str, dict[str, Any]] = {
    "tiny": {"batch_size": 16, "max_steps": 200, "lr": 1e-3, "warmup_steps": 10,
             "eval_interval": 50, "eval_batches": 10},
    # time-budgeted (no max_steps): the schedule is sized to the steps that fit in max_time
    "cpu-char": {"batch_size": 32, "max_time": 180.0, "lr": 5e-3, "min_lr": 5e-4,
                 "warmup_steps": 100, "betas": (0.9, 0.99), "eval_batches": 10},
    "shakespeare-char": {"batch_size": 64, "max_steps": 5000, "lr": 1e-3, "min_lr": 1e-4,
                         "warmup_steps": 100, "eval_interval": 250, "eval_batches": 200,
                         "betas": (0.9, 0.99)},
}
_GPT2_RECIPE = {"batch_size": 12, "grad_accum": 8, "max_steps": 5000, "lr": 6e-4,
                "warmup_steps": 200, "eval_interval": 250, "eval_batches": 50}

# flag -> TrainConfig field, for the flags that simply override a recipe value
_OVERRIDES = ["max_steps", "max_time", "batch_size", "grad_accum", "lr", "min_lr",
              "warmup_steps", "lr_decay_steps", "weight_decay", "grad_clip", "eval_interval",
              "eval_batches", "ckpt_interval", "log_interval"]


def add_parsers(sub: Any) -> None:
    """Add the ``train`` and ``sample`` subcommands to the ``gptlab`` parser."""
    p = sub.add_parser("train", help="train a GPT on a corpus, with checkpoints",
                       description="Train a GPT from a preset on a corpus. The checkpoint "
                       "folder (--out) is loadable with GPT.load and `gptlab sample`.")
    p.add_argument("--preset", default="shakespeare-char",
                   help="model size: tiny, cpu-char, shakespeare-char, gpt2, ... "
                        "(default shakespeare-char)")
    p.add_argument("--data", default="tinyshakespeare",
                   help="corpus name (tinyshakespeare, python-stdlib, ...) or a path to a text "
                        "file or folder (default tinyshakespeare)")
    p.add_argument("--tokenizer", default="char",
                   help="char, bpe:N (train a BPE of N tokens on the training text) or gpt2")
    p.add_argument("--out", help="checkpoint folder (default runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh even if --out holds a checkpoint")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bf16 or fp16")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--block-size", type=int, help="context length (default: the preset's)")
    p.add_argument("--dropout", type=float, help="dropout (default: the preset's)")
    p.add_argument("--val-fraction", type=float, default=0.1,
                   help="last part of the corpus kept for validation (default 0.1)")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--csv", action="store_true", help="also write log.csv")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    for name in _OVERRIDES:
        kind = float if name in ("max_time", "lr", "min_lr", "weight_decay", "grad_clip") else int
        p.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate text from a checkpoint",
                       description="Continue a prompt with a trained model.")
    p.add_argument("--ckpt", required=True, help="checkpoint folder (from `gptlab train`)")
    p.add_argument("--prompt", default="", help="text to continue (default: a new line)")
    p.add_argument("--max-new-tokens", type=int, default=200)
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=200)
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_sample)


def _errors(fn: Any, args: argparse.Namespace) -> int:
    from gptlab.train import TrainingDiverged

    try:
        return fn(args)
    except (ValueError, OSError, TrainingDiverged) as e:  # the user's to fix: no traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


def cmd_train(args: argparse.Namespace) -> int:
    return _errors(_train, args)


def cmd_sample(args: argparse.Namespace) -> int:
    return _errors(_sample, args)


def make_tokenizer(spec: str, text: str, train_text: str) -> Any:
    """``char`` (fitted on the whole corpus), ``bpe:N`` (trained on train_text) or ``gpt2``."""
    from gptlab.tokenizers import BPETokenizer, CharTokenizer

    if spec == "char":
        return CharTokenizer(text)
    if spec == "gpt2":
        return BPETokenizer.gpt2()
    if spec.startswith("bpe:") and spec[4:].isdigit():
        return BPETokenizer(pattern="gpt2").train(train_text, int(spec[4:]))
    raise ValueError(f"unknown --tokenizer {spec!r}: use char, bpe:N (e.g. bpe:512) or gpt2.")


def _train(args: argparse.Namespace) -> int:
    import torch

    from gptlab.checkpoint import has_checkpoint, read_train_state
    from gptlab.data import load_corpus, train_val_split
    from gptlab.distributed import dist_info
    from gptlab.model import GPT, GPTConfig
    from gptlab.tokenizers import load_tokenizer
    from gptlab.train import TrainConfig, Trainer

    info = dist_info()

    def say(*a: Any) -> None:
        if info.is_main:
            print(*a, flush=True)

    out = Path(args.out) if args.out else Path("runs") / args.preset
    recipe = dict(RECIPES.get(args.preset, _GPT2_RECIPE if args.preset.startswith("gpt2")
                              else {}))
    recipe.update({k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None})
    cfg = TrainConfig(**recipe, out_dir=str(out), resume=args.resume, overwrite=args.overwrite,
                      device=args.device, dtype=args.dtype, compile=args.compile, seed=args.seed,
                      progress=not args.no_progress,
                      log_formats=("jsonl", "csv") if args.csv else ("jsonl",))
    model_overrides = {k: v for k, v in (("block_size", args.block_size),
                                         ("dropout", args.dropout)) if v is not None}
    GPTConfig.preset(args.preset, **model_overrides)  # an unknown preset fails here, early
    if args.resume:
        read_train_state(out)  # no checkpoint: fail before reading and tokenizing the corpus
    elif has_checkpoint(out) and not args.overwrite:
        raise ValueError(f"{out} already holds a checkpoint: pass --resume to continue it, "
                         "--overwrite to start again, or --out to train elsewhere.")

    text = load_corpus(args.data)
    train_text, val_text = train_val_split(text, args.val_fraction)
    if args.resume and (out / "tokenizer.json").is_file():
        tok = load_tokenizer(out / "tokenizer.json")
        say(f"tokenizer: {tok!r} (from {out})")
    else:
        tok = make_tokenizer(args.tokenizer, text, train_text)
        say(f"tokenizer: {tok!r}")
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    say(f"corpus {args.data!r}: {len(text):,} characters -> {len(train_ids):,} train and "
        f"{len(val_ids):,} val tokens")

    torch.manual_seed(args.seed)
    model = GPT(GPTConfig.preset(args.preset, vocab_size=tok.vocab_size, **model_overrides))
    if "max_steps" not in recipe and cfg.max_time is not None and not args.resume:
        cfg = _fit_to_time(model, train_ids, cfg, recipe, info, say)
    trainer = Trainer(model, train_ids, val_ids, cfg, tokenizer=tok)
    global_batch = cfg.batch_size * cfg.grad_accum * info.world_size
    say(f"model {args.preset!r}: {model.num_params() / 1e6:.2f}M parameters, context "
        f"{trainer.block_size}; device {trainer.device}"
        + (f" x {info.world_size} processes" if info.enabled else "")
        + f"; global batch {global_batch} x {trainer.block_size} tokens"
        + (f"; resuming {out}" if args.resume else ""))
    result = trainer.fit()

    say(f"done: step {result.step} in {result.elapsed_s:.1f} s (stopped by {result.stopped_by})")
    losses = [f"{k} {v:.4f}" for k, v in (("train", result.train_loss),
                                          ("val", result.val_loss)) if v is not None]
    say("  loss: " + ", ".join(losses)
        + (f" (best val {result.best_val_loss:.4f})" if result.best_val_loss is not None else ""))
    mfu = (f"MFU {100 * result.mfu:.1f}%" if result.mfu is not None
           else f"MFU n/a on {trainer.device.type}")
    say(f"  speed: {result.tokens_per_s:,.0f} tokens/s, {mfu}")
    say(f"  checkpoint: {out}  (GPT.load({str(out)!r}) loads the model)")
    say(f"  try: gptlab sample --ckpt {out} --prompt \"...\"")
    return 0


def _fit_to_time(model: Any, train_ids: Any, cfg: Any, recipe: dict[str, Any], info: Any,
                 say: Any) -> Any:
    """A time-budgeted recipe (max_time, no max_steps): size the schedule to the steps that fit,
    so the cosine ends when the time does."""
    from dataclasses import replace

    import torch

    from gptlab.device import pick_device
    from gptlab.train import steps_for_time

    if info.enabled:
        say("note: under torchrun the schedule is not sized to --max-time; pass --max-steps.")
        return cfg
    threads = all_threads = torch.get_num_threads()
    n = steps_for_time(model, train_ids, cfg, cfg.max_time)
    if pick_device(cfg.device).type == "cpu" and threads > 1:
        # On a busy CPU, threads that wait for each other can make a step several times
        # slower than one thread alone: time both and keep the faster.
        one = steps_for_time(model, train_ids, cfg, cfg.max_time, threads=1)
        if one > n:
            torch.set_num_threads(1)
            n, threads = one, 1
        say(f"CPU threads: {threads} (the faster of 1 and {all_threads} here)")
    say(f"time budget {cfg.max_time:g} s: {n} steps fit here, the schedule is sized to them")
    sized = {"max_steps": n, "warmup_steps": min(recipe.get("warmup_steps", 100), n // 10)}
    if "eval_interval" not in recipe:
        sized["eval_interval"] = max(1, math.ceil(n / 8))
    return replace(cfg, **sized)


def _sample(args: argparse.Namespace) -> int:
    import torch

    from gptlab.device import pick_device
    from gptlab.generate import generate
    from gptlab.model import GPT
    from gptlab.tokenizers import load_tokenizer

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}.")
    if not args.temperature > 0:
        raise ValueError(f"--temperature must be > 0 (lower is more predictable; try 0.8), got "
                         f"{args.temperature}.")
    if args.top_k is not None and args.top_k < 1:
        raise ValueError(f"--top-k must be at least 1, got {args.top_k}.")
    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be at least 1, got {args.num_samples}.")
    ckpt = Path(args.ckpt)
    device = pick_device(args.device)
    model = GPT.load(ckpt, map_location=device).eval()
    if not (ckpt / "tokenizer.json").is_file():
        raise FileNotFoundError(f"{ckpt / 'tokenizer.json'} is missing, so the model's ids cannot "
                                "be turned into text. Checkpoints from `gptlab train`, or from "
                                "train(..., tokenizer=tok), include it.")
    tok = load_tokenizer(ckpt / "tokenizer.json")
    ids = tok.encode(args.prompt or "\n")
    if not ids:
        ids = [0]
    torch.manual_seed(args.seed)
    idx = torch.tensor([ids], dtype=torch.long, device=device)
    for i in range(args.num_samples):
        out = generate(model, idx, args.max_new_tokens, temperature=args.temperature,
                       top_k=args.top_k)
        if i:
            print("-" * 40)
        print(args.prompt + tok.decode(out[0, -args.max_new_tokens:].tolist()), flush=True)
    return 0
