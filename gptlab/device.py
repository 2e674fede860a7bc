"""Where tensors live and how random numbers start.

One rule for the whole course: use the best device this machine has (CUDA, then Apple's
MPS, then the CPU), unless the environment variable ``GPTLAB_DEVICE`` says otherwise.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV = "GPTLAB_DEVICE"
KNOWN_DEVICES = ("cuda", "mps", "cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def available_devices() -> list[str]:
    """The device types usable here, best first (the CPU is always last)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return found + ["cpu"]


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to train on.

    ``requested`` (or ``$GPTLAB_DEVICE``) may be "auto", "cpu", "mps", "cuda" or "cuda:N".
    Asking for a device this machine does not have is an error rather than a silent fallback:
    a learner who asked for a GPU should know they are not getting one.
    """
    choice = (requested or os.environ.get(DEVICE_ENV) or "auto").strip().lower()
    if choice == "auto":
        return torch.device(available_devices()[0])
    kind = choice.split(":")[0]
    if kind not in KNOWN_DEVICES:
        raise ValueError(
            f"Unknown device {choice!r}. Use one of: auto, cpu, mps, cuda, cuda:N "
            f"(set by argument or ${DEVICE_ENV})."
        )
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {choice!r} was requested but PyTorch sees no CUDA GPU here "
                f"(torch {torch.__version__}, CUDA build: {torch.version.cuda or 'no'}). "
                f"Use device 'cpu' or 'auto', or install a CUDA build of PyTorch "
                f"(https://pytorch.org/get-started/locally/)."
            )
        index = int(choice.split(":")[1]) if ":" in choice else 0
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"Device {choice!r} was requested but only {torch.cuda.device_count()} "
                f"CUDA device(s) exist. Use cuda:0 .. cuda:{torch.cuda.device_count() - 1}."
            )
    if kind == "mps" and not _mps_available():
        raise ValueError(
            f"Device {choice!r} was requested but Apple's MPS backend is not available here. "
            f"Use device 'cpu' or 'auto'."
        )
    return torch.device(choice)


def seed_everything(seed: int = 1337) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so runs repeat."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA and MPS generators


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The reduced-precision dtype worth autocasting to on ``device``, or None for float32.

    bf16 keeps float32's range, so it needs no loss scaling; fp16 (older GPUs) needs a
    GradScaler. On the CPU autocast rarely speeds up small models, so we stay in float32.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return None


def cpu_threads() -> int:
    """Threads PyTorch uses for CPU math (at most the cores this process may run on)."""
    return torch.get_num_threads()


def describe_device(device: torch.device | str) -> str:
    """One human line about ``device``: its name and, for GPUs, memory."""
    device = torch.device(device)
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({cpu_threads()} threads)"
