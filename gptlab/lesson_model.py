"""The model lessons 09-12 work with: lesson 08's checkpoint, or a stand-in trained now.

    from gptlab.lesson_model import load_lesson_model
    model, tok, folder = load_lesson_model()      # eval mode, on the CPU

Lesson 08 saves its model in ``lesson_checkpoint("lesson08")``. A learner who skipped it (or
a test run, which uses a fresh runs folder) still needs *some* character model, so when that
folder holds no checkpoint we train a small one on the same corpus and save it next to it as
``lesson_checkpoint("lesson08-standin")``; the next call loads it instead of training again.
The stand-in is weaker (it trains for about a minute, a few seconds in smoke mode) but has
the same shape of files: ``GPT.load(folder)`` and ``load_tokenizer(folder / "tokenizer.json")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch

from gptlab.checkpoint import has_checkpoint
from gptlab.model import GPT, GPTConfig
from gptlab.notebook import budget
from gptlab.paths import lesson_checkpoint
from gptlab.tokenizers import Tokenizer, load_tokenizer

__all__ = ["LessonModel", "load_lesson_model", "train_standin"]

STANDIN = "lesson08-standin"


class LessonModel(NamedTuple):
    model: GPT
    tokenizer: Tokenizer
    folder: Path  # where it was loaded from


def load_lesson_model(name: str = "lesson08", corpus: str = "tinyshakespeare",
                      quiet: bool = False) -> LessonModel:
    """Load the checkpoint of run ``name`` (lesson 08's by default), in eval mode on the CPU.

    If that run has no checkpoint, load (or first train and save) a stand-in trained on
    ``corpus``, and say so unless ``quiet``.
    """
    folder = lesson_checkpoint(name)
    if not has_checkpoint(folder):
        standin = lesson_checkpoint(f"{name}-standin")
        if not has_checkpoint(standin):
            if not quiet:
                print(f"No checkpoint in {folder} (run lesson 08 to make one): training a small "
                      f"stand-in on {corpus!r} instead...")
            train_standin(standin, corpus)
        elif not quiet:
            print(f"No checkpoint in {folder}: using the stand-in model in {standin} "
                  "(run lesson 08 for a better one).")
        folder = standin
    tokenizer_file = folder / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"{folder} holds a model but no tokenizer.json, so its text "
                                "cannot be decoded. Fix: train it with a tokenizer "
                                "(train(..., tokenizer=tok)) or re-run lesson 08.")
    model = GPT.load(folder).eval()
    return LessonModel(model, load_tokenizer(tokenizer_file), folder)


def train_standin(folder: Path, corpus: str = "tinyshakespeare") -> None:
    """Train the stand-in character model (the cpu-char preset and recipe) into ``folder``."""
    from gptlab.data import load_corpus, train_val_split
    from gptlab.tokenizers import CharTokenizer
    from gptlab.train import TrainConfig, train
    from gptlab.train_cli import RECIPES

    text = load_corpus(corpus)
    tok = CharTokenizer.fit(text)
    train_text, val_text = train_val_split(text)
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream untouched
        torch.manual_seed(1337)
        model = GPT(GPTConfig.preset("cpu-char", vocab_size=tok.vocab_size, dropout=0.0))
        steps = budget(600, 20)
        # Lesson 08's recipe (that of `gptlab train --preset cpu-char`), for fewer steps.
        cfg = TrainConfig(**{**RECIPES["cpu-char"], "max_steps": steps,
                             "max_time": budget(90, 20), "warmup_steps": steps // 10,
                             "eval_interval": steps, "eval_batches": budget(10, 1)},
                          device="cpu", progress=False, out_dir=folder, overwrite=True)
        train(model, train_ids, val_ids, cfg, tokenizer=tok)
