"""load_lesson_model: lesson 08's checkpoint when present, else a stand-in trained once."""

import torch

from gptlab.lesson_model import load_lesson_model
from gptlab.model import GPT, GPTConfig
from gptlab.paths import lesson_checkpoint
from gptlab.tokenizers import CharTokenizer
from gptlab.train import TrainConfig, train


def test_standin_is_trained_once_then_reused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPTLAB_RUNS_DIR", str(tmp_path))
    model, tok, folder = load_lesson_model(corpus="python-stdlib")
    assert folder == lesson_checkpoint("lesson08-standin")
    assert "training a small stand-in" in capsys.readouterr().out
    assert not model.training and tok.vocab_size == model.config.vocab_size
    state = {k: v.clone() for k, v in model.state_dict().items()}
    again, _, _ = load_lesson_model(corpus="python-stdlib")
    assert "using the stand-in" in capsys.readouterr().out
    torch.testing.assert_close(again.state_dict(), state)


def test_lesson08_checkpoint_wins(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GPTLAB_RUNS_DIR", str(tmp_path))
    tok = CharTokenizer.fit("abcdefgh ")
    ids = torch.tensor(tok.encode("abc defgh " * 50))
    model = GPT(GPTConfig.preset("tiny", vocab_size=tok.vocab_size))
    train(model, ids, ids, TrainConfig(batch_size=4, block_size=16, max_steps=2, eval_batches=1,
                                       device="cpu", progress=False,
                                       out_dir=lesson_checkpoint("lesson08")), tokenizer=tok)
    loaded, loaded_tok, folder = load_lesson_model(quiet=True)
    assert folder == lesson_checkpoint("lesson08") and capsys.readouterr().out == ""
    assert loaded_tok.decode(loaded_tok.encode("bad")) == "bad"
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
