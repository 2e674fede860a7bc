"""The training loop (lesson 08): batches in, a better model and a checkpoint out.

    from gptlab.train import TrainConfig, train
    cfg = TrainConfig(batch_size=32, max_steps=2000, lr=1e-3, out_dir="runs/mine")
    result = train(model, train_ids, val_ids, cfg, tokenizer=tok)   # TrainResult
    result.val_loss, result.tokens_per_s, GPT.load("runs/mine")

One optimizer step: set the learning rate from the schedule; for each of ``grad_accum``
micro-batches run forward (under autocast on a GPU) and backward on loss / grad_accum, so the
gradients add up to the mean over the whole batch; clip the gradient norm; step AdamW.
Every ``eval_interval`` steps the loss is measured on FIXED train and val batches; every
``ckpt_interval`` steps (and at the end) a checkpoint is saved (see ``gptlab.checkpoint``).

Under ``torchrun`` the run is data-parallel (DDP): each process draws its own micro-batches
and the gradients are averaged. The global batch is batch_size * grad_accum * world_size
windows of block_size tokens, and the data stream depends only on that product (see
``gptlab.batches.sample_step``): 2 processes with grad_accum=1 train exactly like one process
with grad_accum=2, up to the rounding of the gradient all-reduce (and dropout masks, which
differ). Only rank 0 logs, shows progress and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gptlab import distributed
from gptlab.batches import as_token_tensor, check_batch_args, eval_batches, sample_step
from gptlab.callbacks import Callback, FunctionCallback, ProgressBar
from gptlab.checkpoint import (
    check_out_dir,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from gptlab.device import pick_device, seed_everything
from gptlab.metrics import mfu, peak_flops
from gptlab.schedule import configure_optimizer, lr_at
from gptlab.train_config import TrainConfig, amp_dtype, log_callbacks

__all__ = ["TrainConfig", "TrainResult", "Trainer", "TrainingDiverged", "configure_optimizer",
           "lr_at", "steps_for_time", "train"]


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message says where and what to try."""


@dataclass
class TrainResult:
    """What a run ended with. ``losses`` holds (step, loss) for every step of this run."""

    step: int
    stopped_by: str  # "max_steps" | "max_time"
    train_loss: float | None  # on the fixed evaluation batches, at the end
    val_loss: float | None
    best_val_loss: float | None
    elapsed_s: float
    tokens_per_s: float
    mfu: float | None  # None on a CPU or an unknown GPU
    out_dir: Path | None
    losses: list[tuple[int, float]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)


class Trainer:
    """Checks everything at creation (nothing runs or is written yet); ``fit()`` trains."""

    def __init__(self, model: nn.Module, train_data: Any, val_data: Any = None,
                 config: TrainConfig | None = None, *, tokenizer: Any = None,
                 callbacks: list[Callback | Any] | None = None) -> None:
        self.config = cfg = config if config is not None else TrainConfig()
        if not isinstance(model, nn.Module) or not hasattr(model, "config"):
            raise ValueError(f"model must be a gptlab GPT (an nn.Module with a .config), got "
                             f"{type(model).__name__}.")
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError("the model has no trainable parameters: every one is frozen "
                             "(requires_grad=False), so training would change nothing. Fix: "
                             "unfreeze some (gptlab.finetune.unfreeze(model), or freeze fewer "
                             "layers), or add LoRA adapters (gptlab.finetune.apply_lora).")
        self.model, self.tokenizer, self.dist = model, tokenizer, distributed.dist_info()
        self.device = pick_device(cfg.device)
        self.amp_dtype = amp_dtype(cfg.dtype, self.device)
        mc = model.config
        self.block_size = T = cfg.block_size or mc.block_size
        if T > mc.block_size:
            raise ValueError(f"block_size={T} is larger than the model's context "
                             f"(model.config.block_size={mc.block_size}). Fix: block_size <= "
                             f"{mc.block_size}, or build a model with a longer block_size.")
        self.train_data = self._check_data(train_data, "train_data")
        self.val_data = None if val_data is None else self._check_data(val_data, "val_data")
        if tokenizer is not None and tokenizer.vocab_size > mc.vocab_size:
            raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only "
                             f"{mc.vocab_size}. Fix: GPTConfig(vocab_size=tokenizer.vocab_size).")
        self.out_dir = Path(cfg.out_dir).expanduser() if cfg.out_dir is not None else None
        self.step, self.best_val_loss, self.tokens_seen, self._fitted = 0, None, 0, False
        if self.out_dir is not None:
            check_out_dir(self.out_dir, mc, cfg.resume, cfg.overwrite, cfg.max_steps,
                          self.dist.rank)
        elif cfg.resume:
            raise ValueError("resume=True needs out_dir: the folder of the run to continue.")
        self.callbacks: list[Callback] = []
        if self.dist.is_main:
            self.callbacks += [ProgressBar()] if cfg.progress else []
            self.callbacks += log_callbacks(cfg) if self.out_dir is not None else []
            self.callbacks += [c if isinstance(c, Callback) else FunctionCallback(c)
                               for c in callbacks or []]

    # ------------------------------------------------------------------ checks, up front

    def _check_data(self, data: Any, name: str) -> torch.Tensor:
        data = as_token_tensor(data, name)
        check_batch_args(data, self.config.batch_size, self.block_size, name)
        lo, hi = (int(v) for v in torch.aminmax(data))
        V = self.model.config.vocab_size
        if lo < 0 or hi >= V:
            raise ValueError(f"{name} holds token id {lo if lo < 0 else hi}, outside the model's "
                             f"vocabulary [0, {V}). Fix: encode with the tokenizer the model was "
                             f"built for, or build the model with vocab_size >= {hi + 1}.")
        return data

    # ------------------------------------------------------------------ training

    def fit(self) -> TrainResult:
        """Train until max_steps (or max_time); returns a :class:`TrainResult`."""
        if self._fitted:
            raise RuntimeError("a Trainer trains once; make a new one (resume=True continues "
                               "from its checkpoint).")
        self._fitted = True
        self.device, owns_group = distributed.setup(self.dist, self.device)
        started = False
        try:
            self._prepare()
            for cb in self.callbacks:
                cb.on_train_start(self)
            started = True
            return self._loop()
        finally:
            if started:
                for cb in self.callbacks:
                    cb.on_train_end(self)
            if owns_group:
                torch.distributed.destroy_process_group()

    def _prepare(self) -> None:
        cfg, dev = self.config, self.device
        if dev.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls on tensor cores
            torch.backends.cudnn.allow_tf32 = True
        self.raw = self.model.to(dev).train()
        self.optimizer = configure_optimizer(self.raw, cfg)
        self.scaler = torch.amp.GradScaler(dev.type, enabled=self.amp_dtype == torch.float16)
        self.batch_gen = torch.Generator().manual_seed(cfg.seed)  # the data order: checkpointed
        if cfg.resume:
            self._restore()
        else:
            seed_everything(cfg.seed + self.dist.rank)  # dropout: its own masks on each rank
        self.start_step = self.step
        splits = {"train": self.train_data, "val": self.val_data}
        self.eval_sets = {
            name: [(x.to(dev), y.to(dev)) for x, y in
                   eval_batches(data, cfg.eval_batches, cfg.batch_size, self.block_size,
                                seed=cfg.seed + 1 + i)]
            for i, (name, data) in enumerate(splits.items()) if data is not None}
        self.eval_model = torch.compile(self.raw) if cfg.compile else self.raw
        self.train_model = self.eval_model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [dev.index] if dev.type == "cuda" else None
            self.train_model = DDP(self.eval_model, device_ids=ids)
        self.autocast = (lambda: torch.autocast(dev.type, dtype=self.amp_dtype)) \
            if self.amp_dtype is not None else contextlib.nullcontext
        fpt = getattr(self.raw, "flops_per_token", None)
        self.flops_per_token = fpt(self.block_size) if fpt else None
        self.peak = peak_flops(dev)
        self.losses: list[tuple[int, float]] = []
        self.evals: list[dict[str, Any]] = []
        self.last_good: tuple[int, float] | None = None
        self.saved_step: int | None = self.step if cfg.resume else None
        self.train_time = self.train_tokens = 0.0

    def _loop(self) -> TrainResult:
        cfg, info, dev = self.config, self.dist, self.device
        B, T, A, W = cfg.batch_size, self.block_size, cfg.grad_accum, info.world_size
        self.t0 = time.perf_counter()
        if self.step == 0 and cfg.eval_at_start:
            self._evaluate()
        buf = torch.zeros(2, cfg.log_interval, device=dev)  # loss, grad norm: read in one sync
        pending: list[tuple[int, float]] = []  # (step, lr) not yet read back
        ckpt_every = cfg.ckpt_interval or cfg.eval_interval
        clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf  # inf: measure, do not clip
        stopped_by = "max_steps"
        self.timer = time.perf_counter()
        while self.step < cfg.max_steps:
            lr = lr_at(self.step, cfg)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            micro = sample_step(self.train_data, B, T, self.batch_gen, grad_accum=A,
                                world_size=W, rank=info.rank, device=dev)
            loss_sum = torch.zeros((), device=dev)
            for a, (x, y) in enumerate(micro):
                no_sync = info.enabled and a < A - 1  # all-reduce gradients once, at the end
                with self.train_model.no_sync() if no_sync else contextlib.nullcontext():
                    with self.autocast():
                        _, loss = self.train_model(x, y)
                    loss = loss / A
                    self.scaler.scale(loss).backward()
                loss_sum += loss.detach()
            if self.scaler.is_enabled():
                self.scaler.unscale_(self.optimizer)  # clip the true gradients, not scaled ones
            norm = torch.nn.utils.clip_grad_norm_(self.raw.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
            buf[0, len(pending)], buf[1, len(pending)] = loss_sum, norm
            self.step += 1
            self.tokens_seen += B * T * A * W
            pending.append((self.step, lr))
            last = self.step >= cfg.max_steps
            evaluate = self.step % cfg.eval_interval == 0 or last
            save = self.out_dir is not None and (self.step % ckpt_every == 0 or last)
            full = len(pending) == cfg.log_interval
            if self._time_is_up(check_all=full):
                stopped_by, evaluate, save = "max_time", True, self.out_dir is not None
            if full or evaluate or save:
                self._flush(buf, pending)
            if evaluate:
                self._evaluate()
            if save:
                self._save()
            if stopped_by == "max_time":
                break
        return self._result(stopped_by)

    def _time_is_up(self, check_all: bool) -> bool:
        """max_time passed? Under DDP the ranks agree (at log steps only: it costs a sync)."""
        if self.config.max_time is None or (self.dist.enabled and not check_all):
            return False
        up = torch.tensor([float(time.perf_counter() - self.t0 >= self.config.max_time)],
                          device=self.device)
        return bool(distributed.all_reduce_sum(up, self.dist).item() > 0)

    def _flush(self, buf: torch.Tensor, pending: list[tuple[int, float]]) -> None:
        """Read the buffered losses back (one sync), check them, and report them."""
        n, W = len(pending), self.dist.world_size
        losses = distributed.all_reduce_sum(buf[0, :n].clone(), self.dist) / W
        loss_list, norm_list = torch.stack([losses, buf[1, :n]]).tolist()
        now = time.perf_counter()
        dt, tokens = now - self.timer, n * self.config.batch_size * self.block_size * \
            self.config.grad_accum * W
        self.train_time, self.train_tokens = self.train_time + dt, self.train_tokens + tokens
        tps = tokens / dt if dt > 0 else 0.0
        util = mfu(self.flops_per_token, tps, self.peak, W) if self.flops_per_token else None
        for (step, lr), loss, norm in zip(pending, loss_list, norm_list):
            if not math.isfinite(loss):
                raise self._diverged(step, loss)
            self.last_good = (step, loss)
            self.losses.append((step, loss))
            self._emit({"kind": "train", "step": step, "loss": loss, "lr": lr, "grad_norm": norm,
                        "tokens_per_s": tps, "mfu": util, "elapsed_s": now - self.t0})
        pending.clear()
        self.timer = now

    @torch.no_grad()
    def _evaluate(self) -> None:
        """Mean loss over the fixed batches of each split (shared out between DDP ranks)."""
        record: dict[str, Any] = {"kind": "eval", "step": self.step}
        r, W = self.dist.rank, self.dist.world_size
        self.eval_model.eval()  # no dropout, and no random numbers drawn
        try:
            for name, batches in self.eval_sets.items():
                total = torch.zeros(2, device=self.device)  # sum of losses, number of batches
                for x, y in batches[r::W]:
                    with self.autocast():
                        _, loss = self.eval_model(x, y)
                    total += torch.stack([loss.float(), torch.ones((), device=self.device)])
                s, count = distributed.all_reduce_sum(total, self.dist).tolist()
                record[f"{name}_loss"] = s / count
                if not math.isfinite(s):
                    raise self._diverged(self.step, s, f"{name} evaluation loss")
        finally:
            self.eval_model.train()
        if (val := record.get("val_loss")) is not None:
            self.best_val_loss = val if self.best_val_loss is None else min(val, self.best_val_loss)
        record["elapsed_s"] = time.perf_counter() - self.t0
        self.evals.append(record)
        self._emit(record)
        self.timer = time.perf_counter()  # evaluation time is not training time

    def _emit(self, record: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb.on_log(self, record)

    def _diverged(self, step: int, value: float, what: str = "loss") -> TrainingDiverged:
        cfg = self.config
        good = (f"The last finite loss was {self.last_good[1]:.4f} at step {self.last_good[0]}."
                if self.last_good else "No step had a finite loss.")
        kept = (f"The last good checkpoint (step {self.saved_step}) in {self.out_dir} is kept; "
                "nothing was saved after the loss went bad." if self.saved_step is not None
                else "No checkpoint was written.")
        return TrainingDiverged(
            f"Training stopped at step {step}: the {what} is {value} (not a finite number). "
            f"{good} {kept} Try: a lower learning rate (lr={cfg.lr:g} now; e.g. "
            f"{cfg.lr / 10:g}), gradient clipping (grad_clip={cfg.grad_clip:g} now; 1.0 is "
            "usual), more warmup_steps, dtype='float32' or 'bf16' instead of fp16, and check "
            "the data (token ids, empty or repeated text).")

    # ------------------------------------------------------------------ checkpoints

    def _save(self) -> None:
        rng = rng_state(self.batch_gen, self.device, self.dist)  # collective under DDP
        if self.dist.is_main:
            state = {"step": self.step, "tokens_seen": self.tokens_seen,
                     "best_val_loss": self.best_val_loss,
                     "last_loss": self.last_good[1] if self.last_good else None,
                     "lr": lr_at(self.step, self.config), "world_size": self.dist.world_size,
                     "last_eval": self.evals[-1] if self.evals else None,
                     "train_config": self.config.to_dict(), "rng": rng}
            save_checkpoint(self.out_dir, self.raw, self.optimizer, state,
                            tokenizer=self.tokenizer, scaler=self.scaler)
            for cb in self.callbacks:
                cb.on_checkpoint(self, self.out_dir)
        self.saved_step = self.step
        self.timer = time.perf_counter()

    def _restore(self) -> None:
        ck = load_checkpoint(self.out_dir, map_location=self.device)
        self.raw.load_tensors(ck["model"], str(self.out_dir / "model.safetensors"))
        saved = ck["optimizer"]
        for g_saved, g_now in zip(saved["param_groups"], self.optimizer.param_groups):
            for key in ("fused", "foreach", "capturable"):  # this machine's kernels, not theirs
                if key in g_now:
                    g_saved[key] = g_now[key]
        self.optimizer.load_state_dict(saved)
        if ck["scaler"] is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(ck["scaler"])
        st = ck["train_state"]
        self.step, self.tokens_seen = st["step"], st.get("tokens_seen", 0)
        self.best_val_loss = st.get("best_val_loss")
        old = st.get("train_config", {})
        glob = old.get("batch_size", 0) * old.get("grad_accum", 0) * st.get("world_size", 1)
        cfg = self.config
        if glob != cfg.batch_size * cfg.grad_accum * self.dist.world_size:
            warnings.warn("the global batch (batch_size * grad_accum * world_size) differs from "
                          "the checkpoint's: training continues, but with another data order.",
                          stacklevel=3)
        set_rng_state(st["rng"], self.batch_gen, self.device, self.dist.rank)

    def _result(self, stopped_by: str) -> TrainResult:
        ev = self.evals[-1] if self.evals else {}
        tps = self.train_tokens / self.train_time if self.train_time > 0 else 0.0
        util = mfu(self.flops_per_token, tps, self.peak, self.dist.world_size) \
            if self.flops_per_token else None
        return TrainResult(step=self.step, stopped_by=stopped_by,
                           train_loss=ev.get("train_loss"), val_loss=ev.get("val_loss"),
                           best_val_loss=self.best_val_loss,
                           elapsed_s=time.perf_counter() - self.t0, tokens_per_s=tps, mfu=util,
                           out_dir=self.out_dir, losses=self.losses, evals=self.evals)


def train(model: nn.Module, train_data: Any, val_data: Any = None,
          config: TrainConfig | None = None, *, tokenizer: Any = None,
          callbacks: list[Callback | Any] | None = None, **overrides: Any) -> TrainResult:
    """Train ``model`` on token ids; keyword ``overrides`` change fields of ``config``:
    ``train(model, tr, va, max_steps=200, lr=3e-4)``."""
    config = config if config is not None else TrainConfig()
    if overrides:
        config = replace(config, **overrides)
    return Trainer(model, train_data, val_data, config, tokenizer=tokenizer,
                   callbacks=callbacks).fit()


def steps_for_time(model: nn.Module, train_data: Any, config: TrainConfig, seconds: float, *,
                   share: float = 0.85, probe_steps: int = 5, threads: int | None = None) -> int:
    """``max_steps`` for ``config`` so that training ``model`` takes about ``seconds``.

    A machine may do a hundred steps a minute or a thousand, and the learning-rate schedule
    should end when the time does (a cosine cut off halfway never reaches its low learning
    rate). So: time ``probe_steps`` steps of ``config`` on a copy of ``model`` (after one
    warm-up run; nothing is written, the model is untouched) and keep ``share`` of
    ``seconds`` for the steps: the rest pays for evaluations and checkpoints. Pair it with
    ``max_time=seconds`` as the safety net::

        n = steps_for_time(model, train_ids, cfg, 140)
        train(model, train_ids, val_ids, replace(cfg, max_steps=n, max_time=140))

    ``threads``: time with that many CPU threads (``torch.set_num_threads``; restored after).
    """
    if not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ValueError(f"seconds must be a positive number, got {seconds!r}.")
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share!r}.")
    if distributed.dist_info().enabled:  # each process would time itself and disagree
        raise ValueError("steps_for_time times one process; under torchrun give max_steps.")
    probe = copy.deepcopy(model)
    quiet = {"max_time": None, "out_dir": None, "resume": False, "overwrite": False,
             "eval_at_start": False, "eval_batches": 1, "progress": False, "log_interval": 1,
             "compile": False}
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads or before)
        with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
            train(probe, train_data, None, replace(config, max_steps=1, **quiet))  # warm-up
            timed = train(probe, train_data, None, replace(config, max_steps=probe_steps,
                                                           **quiet))
    finally:
        torch.set_num_threads(before)
    tokens_per_step = (config.batch_size * config.grad_accum * distributed.dist_info().world_size
                       * (config.block_size or model.config.block_size))
    per_step = tokens_per_step / timed.tokens_per_s
    return max(1, int(share * seconds / per_step))
