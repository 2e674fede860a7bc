import random

import numpy as np
import pytest
import torch

from gptlab import budget, is_smoke, setup_notebook
from gptlab.device import (
    autocast_dtype,
    available_devices,
    cpu_threads,
    describe_device,
    pick_device,
    seed_everything,
)


def test_auto_picks_best_available(monkeypatch):
    monkeypatch.delenv("GPTLAB_DEVICE", raising=False)
    assert pick_device().type == available_devices()[0]
    assert available_devices()[-1] == "cpu"


def test_env_overrides(monkeypatch):
    monkeypatch.setenv("GPTLAB_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    # An explicit argument beats the environment.
    assert pick_device("auto").type == available_devices()[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_clear_error(monkeypatch):
    monkeypatch.setenv("GPTLAB_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        pick_device()


def test_unknown_device_lists_choices():
    with pytest.raises(ValueError, match="auto, cpu, mps, cuda"):
        pick_device("tpu")


def test_seed_everything_repeats():
    seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(3)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2])


def test_autocast_dtype_and_threads():
    assert autocast_dtype("cpu") is None
    assert cpu_threads() >= 1
    assert describe_device("cpu").startswith("cpu")


def test_budget_follows_smoke(monkeypatch):
    monkeypatch.setenv("GPTLAB_SMOKE", "1")
    assert is_smoke() and budget(1000, 10) == 10
    monkeypatch.setenv("GPTLAB_SMOKE", "0")
    assert not is_smoke() and budget(1000, 10) == 1000


def test_setup_notebook(capsys, monkeypatch):
    monkeypatch.setenv("GPTLAB_DEVICE", "cpu")
    ctx = setup_notebook(seed=7)
    assert ctx.device == torch.device("cpu") and ctx.seed == 7
    assert "gptlab ready" in capsys.readouterr().out
    assert torch.equal(torch.rand(2), (torch.manual_seed(7), torch.rand(2))[1])
