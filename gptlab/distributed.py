"""Data-parallel training under ``torchrun`` (DistributedDataParallel), kept small.

``torchrun --nproc_per_node=N -m gptlab.cli train ...`` starts N copies of the program and
tells each one who it is through the environment: RANK (0..N-1 over all machines),
LOCAL_RANK (which GPU of this machine) and WORLD_SIZE (N). Each copy holds the whole model,
computes gradients on its own micro-batches, and DDP averages the gradients across copies
during backward, so every copy takes the same optimizer step.

Without those variables (a notebook, plain ``python``) everything here is a no-op.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "all_gather_objects", "all_reduce_sum", "dist_info", "setup"]


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes logs and checkpoints and shows progress."""
        return self.rank == 0


def dist_info() -> DistInfo:
    """Who this process is, from torchrun's environment variables (single process without)."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return DistInfo()
    try:
        return DistInfo(int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0")),
                        int(os.environ["WORLD_SIZE"]))
    except (KeyError, ValueError) as e:
        raise ValueError("WORLD_SIZE is set but RANK/LOCAL_RANK are missing or not integers: "
                         "launch with torchrun, which sets all three.") from e


def setup(info: DistInfo, device: torch.device) -> tuple[torch.device, bool]:
    """Join the process group (NCCL on GPUs, gloo on CPUs); return this rank's device and
    whether we created the group (and so should destroy it at the end)."""
    if not info.enabled:
        return device, False
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if dist.is_initialized():
        return device, False
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return device, True


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over all ranks in place (a no-op for a single process)."""
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_objects(obj: object, info: DistInfo) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank; [obj] for a single process."""
    if not info.enabled:
        return [obj]
    out: list = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
