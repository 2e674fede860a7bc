"""Training speed: tokens per second and model FLOPs utilisation (MFU).

MFU (PaLM, Chowdhery et al. 2022) is the fraction of the GPU's peak arithmetic that the
training run turns into model FLOPs:

    MFU = flops_per_token * tokens_per_second / peak_flops_per_second

with ``flops_per_token`` from ``GPT.flops_per_token()`` (6N + attention) and the peak the
dense bf16 (fp16 where a GPU has no bf16) tensor-core figure from the vendor's datasheet,
without sparsity. Around 40-50% is good for a GPT on an A100/H100. There is no honest peak
for a CPU, so MFU is None there, and on any GPU this table does not know.
"""

from __future__ import annotations

import torch

__all__ = ["PEAK_FLOPS", "mfu", "peak_flops"]

# Substring of torch.cuda.get_device_name() -> dense bf16 FLOP/s. Checked in this order, so the
# more specific names come first ("H100 PCIe" before "H100", "L40S" before "L4").
PEAK_FLOPS: list[tuple[str, float]] = [
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM (e.g. "NVIDIA H100 80GB HBM3")
    ("H800", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("RTX 6000 Ada", 364e12),
    ("RTX A6000", 155e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
    ("V100", 125e12),  # fp16: no bf16 on Volta
    ("T4", 65e12),  # fp16: no bf16 on Turing
]


def peak_flops(device: torch.device | str | None = None, name: str | None = None) -> float | None:
    """Dense bf16 peak FLOP/s of a CUDA ``device`` (or of a GPU called ``name``); None for a CPU,
    an Apple GPU, or a GPU not in :data:`PEAK_FLOPS`."""
    if name is None:
        device = torch.device(device if device is not None else "cpu")
        if device.type != "cuda" or not torch.cuda.is_available():
            return None
        name = torch.cuda.get_device_name(device)
    for key, flops in PEAK_FLOPS:
        if key.lower() in name.lower():
            return flops
    return None


def mfu(flops_per_token: float, tokens_per_s: float, peak: float | None,
        n_devices: int = 1) -> float | None:
    """Model FLOPs utilisation in [0, 1] of ``n_devices`` GPUs of ``peak`` FLOP/s each that
    together process ``tokens_per_s``; None when the peak is unknown (CPU, unknown GPU)."""
    if peak is None or peak <= 0 or tokens_per_s <= 0:
        return None
    return flops_per_token * tokens_per_s / (peak * n_devices)
