"""Small checkpoints and fake models for the gptlab.serve tests (imported by test_serve*.py)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import CharTokenizer

TEXT = ("ROMEO:\nBut soft, what light through yonder window breaks?\n\n"
        "JULIET:\nAy me! O Romeo, Romeo, wherefore art thou Romeo?\n\nExit, scene ends. <>&\"'")


def tiny_gpt(tok: CharTokenizer, seed: int = 0) -> GPT:
    """Random weights: fine for everything but the text's meaning."""
    torch.manual_seed(seed)
    cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=32, n_layer=1, n_head=2, n_embd=16,
                    dropout=0.0)
    return GPT(cfg).eval()


def constant_gpt(tok: CharTokenizer, char: str) -> GPT:
    """A GPT that always predicts ``char`` (the final norm ignores its input and points along
    one axis; with tied weights, only ``char``'s embedding has a component there)."""
    model = tiny_gpt(tok)
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.zero_()
        model.ln_f.bias[0] = 1.0
        model.wte.weight[:, 0] = 0.0
        model.wte.weight[tok.stoi[char], 0] = 10.0
    return model


def save_checkpoint(folder: Path, model: GPT, tok: CharTokenizer) -> Path:
    model.save(folder)
    tok.save(folder / "tokenizer.json")
    return folder


class BigramModel(nn.Module):
    """A fake model that predicts a fixed next character for each character (``table``),
    for exact tests of stop strings; other characters lead to ``default``."""

    def __init__(self, tok: CharTokenizer, table: dict[str, str], default: str) -> None:
        super().__init__()
        V = tok.vocab_size
        logits = torch.full((V, V), -10.0)
        logits[:, tok.stoi[default]] = 10.0
        for a, b in table.items():
            logits[tok.stoi[a]] = -10.0
            logits[tok.stoi[a], tok.stoi[b]] = 10.0
        self.register_buffer("table", logits)
        self.config = SimpleNamespace(vocab_size=V, block_size=64)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        return self.table[idx], None  # (B, T, V)


class GatedModel(nn.Module):
    """Wraps a model; every forward waits for ``gate`` (an Event) first, so that tests can
    hold generations in progress for as long as they need."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.config = model.config
        self.gate = threading.Event()
        self.calls = 0

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, None]:
        self.calls += 1
        if not self.gate.wait(timeout=30):
            raise TimeoutError("GatedModel was never opened")
        return self.inner(idx)
