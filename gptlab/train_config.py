"""``TrainConfig``: every setting of a training run, checked when it is made.

``gptlab.train`` re-exports it: ``from gptlab.train import TrainConfig``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

__all__ = ["DTYPES", "LOG_FORMATS", "TrainConfig", "amp_dtype", "log_callbacks"]

DTYPES = ("auto", "float32", "bf16", "fp16")
LOG_FORMATS = ("jsonl", "csv")


@dataclass
class TrainConfig:
    """Settings of a run. Sizes are per process: the global batch of one optimizer step is
    batch_size * grad_accum * world_size windows of block_size tokens."""

    batch_size: int = 32  # windows per micro-batch (per process)
    block_size: int | None = None  # tokens per window; None: the model's block_size
    max_steps: int = 1000  # optimizer steps in all (a resumed run continues up to this)
    max_time: float | None = None  # seconds: stop at this wall-clock budget, evaluate, save
    lr: float = 1e-3  # peak learning rate
    min_lr: float | None = None  # the end of the cosine; None: lr / 10
    warmup_steps: int | None = None  # linear warmup; None: min(100, max_steps // 10)
    lr_decay_steps: int | None = None  # cosine until this step; None: max_steps
    weight_decay: float = 0.1  # on weight matrices and embeddings only
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0  # max global gradient norm; 0: no clipping (the norm is still logged)
    grad_accum: int = 1  # micro-batches per optimizer step
    eval_interval: int = 100  # steps between evaluations (and one at the end)
    eval_batches: int = 20  # fixed batches per split for each evaluation
    eval_at_start: bool = True  # evaluate the untrained model too (step 0)
    log_interval: int = 10  # steps between read-backs of the loss (a GPU sync): NaN check, logs
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:N" | "mps"
    dtype: str = "auto"  # autocast: "auto" (bf16 / fp16 on CUDA, float32 elsewhere) | ...
    compile: bool = False  # torch.compile the model (worth it on a GPU for long runs)
    seed: int = 1337  # data order, evaluation batches; a fresh run also seeds the global RNGs
    out_dir: str | None = None  # checkpoint folder; None: no checkpoints, no log files
    ckpt_interval: int | None = None  # steps between checkpoints; None: at every evaluation
    log_formats: tuple[str, ...] = ("jsonl",)  # files in out_dir: "jsonl" (log.jsonl), "csv"
    progress: bool = True  # a tqdm progress bar
    resume: bool = False  # continue the checkpoint in out_dir
    overwrite: bool = False  # start afresh even if out_dir holds a checkpoint

    def __post_init__(self) -> None:
        for name in ("batch_size", "max_steps", "grad_accum", "eval_interval", "eval_batches",
                     "log_interval", "block_size", "ckpt_interval", "lr_decay_steps",
                     "warmup_steps", "seed"):
            v = getattr(self, name)
            lowest = 0 if name in ("warmup_steps", "seed") else 1
            optional = name in ("block_size", "ckpt_interval", "lr_decay_steps", "warmup_steps")
            if v is None and optional:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < lowest:
                need = "a non-negative" if lowest == 0 else "a positive"
                raise ValueError(f"{name} must be {need} integer{' or None' if optional else ''}"
                                 f", got {name}={v!r}.")
        if not _number(self.lr) or self.lr <= 0:
            raise ValueError(f"lr must be a positive number, got lr={self.lr!r} (try 1e-3).")
        if self.min_lr is not None and (not _number(self.min_lr) or not 0 <= self.min_lr
                                        <= self.lr):
            raise ValueError(f"min_lr must be between 0 and lr={self.lr}, got {self.min_lr!r}.")
        for name in ("weight_decay", "grad_clip"):
            if not _number(getattr(self, name)) or getattr(self, name) < 0:
                raise ValueError(f"{name} must be a number >= 0, got {getattr(self, name)!r}.")
        self.betas = tuple(self.betas)
        if len(self.betas) != 2 or not all(_number(b) and 0 <= b < 1 for b in self.betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {self.betas!r}.")
        if self.max_time is not None and (not _number(self.max_time) or self.max_time <= 0):
            raise ValueError(f"max_time must be a positive number of seconds or None, got "
                             f"{self.max_time!r}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {list(DTYPES)}, got {self.dtype!r}.")
        self.log_formats = tuple(self.log_formats)
        if bad := [f for f in self.log_formats if f not in LOG_FORMATS]:
            raise ValueError(f"unknown log format(s) {bad}: choose from {list(LOG_FORMATS)}.")
        for name in ("compile", "progress", "resume", "overwrite", "eval_at_start"):
            if type(getattr(self, name)) is not bool:
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if self.resume and self.overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other: pick one.")
        if self.out_dir is not None:
            self.out_dir = str(Path(self.out_dir))
        if not isinstance(self.device, str):
            self.device = str(self.device)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown TrainConfig keys {unknown}; valid: {sorted(known)}.")
        return cls(**d)


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def amp_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``dtype`` ("auto" | "float32" | "bf16" | "fp16") on ``device``;
    None means plain float32. "auto": bf16 on CUDA GPUs that support it, else fp16 (with a
    GradScaler); float32 on CPUs and Apple GPUs (fp16 autocast there is not worth the risk)."""
    if dtype == "float32":
        return None
    if dtype == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"dtype='bf16' was requested but {torch.cuda.get_device_name(device)}"
                             " does not support bfloat16. Use dtype='fp16' or 'auto'.")
        return torch.bfloat16
    if dtype == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def log_callbacks(cfg: TrainConfig) -> list:
    from gptlab.callbacks import CSVLogger, JSONLLogger

    kinds = {"jsonl": JSONLLogger, "csv": CSVLogger}
    return [kinds[f]() for f in cfg.log_formats]
