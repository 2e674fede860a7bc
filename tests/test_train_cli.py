"""Tests for `gptlab train` and `gptlab sample`, run through gptlab.cli.main in-process."""

from __future__ import annotations

import json
import re

import pytest

from gptlab import cli
from gptlab.checkpoint import read_train_state
from gptlab.model import GPT, GPTConfig
from gptlab.tokenizers import load_tokenizer

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(60))
FAST = ["--preset", "tiny", "--eval-batches", "2", "--batch-size", "4", "--no-progress"]


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_sample_end_to_end(tmp_path, corpus, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(capsys, "train", *FAST, "--data", corpus, "--out", out,
                            "--max-steps", 5, "--eval-interval", 5, "--csv")
    assert code == 0, err
    for part in ("tokenizer: CharTokenizer", "corpus", "model 'tiny'", "done: step 5",
                 "val ", "tokens/s", "MFU n/a on cpu", f"checkpoint: {out}", "gptlab sample"):
        assert part in stdout, part
    assert read_train_state(out)["step"] == 5 and (out / "log.csv").is_file()
    assert GPT.load(out).config.n_layer == 2  # the tiny preset, loadable as a model
    tok = load_tokenizer(out / "tokenizer.json")
    assert tok.decode(tok.encode("fox")) == "fox"

    argv = ["sample", "--ckpt", out, "--prompt", "the", "--max-new-tokens", 20, "--seed", 3]
    code, first, err = run(capsys, *argv)
    assert code == 0, err
    assert first.startswith("the") and len(first.rstrip("\n")) == 23
    assert set(first[3:].rstrip("\n")) <= set(TEXT)
    assert run(capsys, *argv)[1] == first  # the same seed, the same text
    code, two, _ = run(capsys, "sample", "--ckpt", out, "--num-samples", 2,
                       "--max-new-tokens", 5, "--top-k", 3)
    assert code == 0 and two.count("-" * 40) == 1

    # --resume continues the run; without it the folder is protected
    code, stdout, err = run(capsys, "train", *FAST, "--data", corpus, "--out", out,
                            "--max-steps", 8, "--eval-interval", 4, "--resume")
    assert code == 0, err
    assert "(from" in stdout and "resuming" in stdout and read_train_state(out)["step"] == 8
    code, _, err = run(capsys, "train", *FAST, "--data", corpus, "--out", out, "--max-steps", 9)
    assert code == 1 and "already holds a checkpoint" in err and "--resume" in err
    assert read_train_state(out)["step"] == 8


def test_train_offline_on_python_stdlib_with_bpe(tmp_path, capsys, corpus):
    code, stdout, err = run(capsys, "train", *FAST, "--data", "python-stdlib", "--out",
                            tmp_path / "std", "--max-steps", 2, "--eval-interval", 2,
                            "--max-time", 600)
    assert code == 0, err
    assert "'python-stdlib'" in stdout and read_train_state(tmp_path / "std")["step"] == 2
    code, stdout, err = run(capsys, "train", *FAST, "--data", corpus, "--tokenizer", "bpe:270",
                            "--out", tmp_path / "bpe", "--max-steps", 2, "--block-size", 16)
    assert code == 0, err
    assert "BPETokenizer" in stdout
    assert json.loads((tmp_path / "bpe" / "config.json").read_text())["config"][
        "vocab_size"] == 270


@pytest.mark.parametrize("argv, match", [
    (["--data", "no/such/file.txt"], "unknown corpus"),
    (["--preset", "huge"], "Unknown preset 'huge'"),
    (["--tokenizer", "words"], "unknown --tokenizer 'words'"),
    (["--resume"], "cannot resume"),
    (["--batch-size", "0"], "batch_size must be a positive integer"),
    (["--block-size", "4096"], r"train_data holds \d+ tokens.*smaller block_size"),
    (["--lr", "-1"], "lr must be a positive number"),
    (["--device", "tpu"], "Unknown device"),
    (["--val-fraction", "0.001"], r"val_data holds \d+ tokens"),
])
def test_train_errors_are_one_clear_line(tmp_path, corpus, capsys, argv, match):
    out = tmp_path / "run"
    full = ["train", *FAST, "--data", corpus, "--out", out, "--max-steps", 2, *argv]
    if "--preset" in argv:
        full = ["train", "--data", corpus, "--out", out, *argv]
    code, _, err = run(capsys, *full)
    assert code == 1 and err.startswith("error: ")
    assert re.search(match, err), err
    assert not (out / "model.safetensors").exists()


def test_sample_errors(tmp_path, capsys):
    code, _, err = run(capsys, "sample", "--ckpt", tmp_path / "nothing")
    assert code == 1 and "not found" in err
    GPT(GPTConfig.preset("tiny")).save(tmp_path / "m")
    code, _, err = run(capsys, "sample", "--ckpt", tmp_path / "m")
    assert code == 1 and "tokenizer.json is missing" in err
    for flag, value, match in [("--temperature", 0, "--temperature must be > 0"),
                               ("--top-k", 0, "--top-k must be at least 1"),
                               ("--max-new-tokens", 0, "--max-new-tokens must be at least 1")]:
        code, _, err = run(capsys, "sample", "--ckpt", tmp_path / "m", flag, value)
        assert code == 1 and match in err


def test_time_budgeted_recipe_sizes_its_schedule(tmp_path, corpus, capsys, monkeypatch):
    """A recipe with max_time and no max_steps (cpu-char) fits its cosine to the budget."""
    from gptlab import train_cli

    monkeypatch.setitem(train_cli.RECIPES, "tiny", {"batch_size": 4, "lr": 1e-3,
                                                     "max_time": 3.0, "eval_batches": 2})
    out_dir = tmp_path / "run"
    code, out, err = run(capsys, "train", "--preset", "tiny", "--data", corpus, "--out", out_dir,
                         "--no-progress", "--block-size", "16")
    assert code == 0, err
    n = int(re.search(r"time budget 3 s: (\d+) steps fit", out).group(1))
    state = read_train_state(out_dir)
    saved = state["train_config"]
    assert saved["max_steps"] == n and saved["max_time"] == 3.0
    assert saved["warmup_steps"] == min(100, n // 10)
