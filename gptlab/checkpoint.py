"""Training checkpoints: one folder that is a loadable model and a resumable run at once.

    out_dir/
      model.safetensors   weights (as GPT.save writes them): GPT.load(out_dir) works
      config.json         the model's GPTConfig (as GPT.save writes it)
      optimizer.pt        AdamW moments (+ the fp16 GradScaler): torch.load(weights_only=True)
      tokenizer.json      the tokenizer, when the run was given one: `gptlab sample` decodes
      train_state.json    step, TrainConfig, best val loss, random states (base64 / JSON)
      log.jsonl           the training log (written as the run goes, not part of a save)

No file is a pickle: weights are safetensors, the optimizer file holds only tensors and plain
containers (``weights_only=True`` refuses anything else), the rest is JSON.

A save is atomic for the whole set: every file is first written to a temporary file and
fsynced; the current files get second names (hard links, no copying) in ``.previous/``;
then the new files are renamed into place, ``train_state.json`` last. If a rename fails, the
old files are put back. If the process dies between two renames, the folder holds a mix:
a random id in train_state.json, model.safetensors and optimizer.pt tells, and
:func:`load_checkpoint` then restores ``.previous/``. Either way the last good checkpoint
survives.
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gptlab import distributed
from gptlab.config import GPTConfig
from gptlab.corpora import _fsync_dir  # one helper for durable renames
from gptlab.model import FORMAT_VERSION as MODEL_FORMAT_VERSION

__all__ = ["STATE_FORMAT", "b64_to_tensor", "check_architecture", "check_out_dir",
           "has_checkpoint",
           "load_checkpoint", "read_train_state", "rng_state", "save_checkpoint", "set_rng_state",
           "tensor_to_b64"]

STATE_FORMAT = "gptlab-train-state"
STATE_VERSION = 1
STATE_FILE = "train_state.json"
BACKUP_DIR = ".previous"
# Architecture switches a resumed run may change: they change no tensor's shape or meaning.
_MAY_DIFFER = {"dropout", "attn_impl"}


def tensor_to_b64(t: torch.Tensor) -> str:
    """A uint8 tensor (a random generator's state) as base64 text, for JSON."""
    return base64.b64encode(t.cpu().numpy().tobytes()).decode("ascii")


def b64_to_tensor(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)


def rng_state(batch_gen: torch.Generator, device: torch.device,
              info: distributed.DistInfo) -> dict[str, Any]:
    """Every random state a resumed run needs, JSON-ready: the data order (``batch_gen``),
    each rank's torch CPU and CUDA states (dropout), Python's and NumPy's. Under DDP this
    is a collective: every rank must call it."""
    mine = {"torch": tensor_to_b64(torch.get_rng_state()),
            "cuda": (tensor_to_b64(torch.cuda.get_rng_state(device))
                     if device.type == "cuda" else None)}
    py, npy = random.getstate(), np.random.get_state()
    return {"batches": tensor_to_b64(batch_gen.get_state()),
            "per_rank": distributed.all_gather_objects(mine, info),
            "python": [py[0], list(py[1]), py[2]],
            "numpy": [npy[0], npy[1].tolist(), *npy[2:]]}


def set_rng_state(rng: dict[str, Any], batch_gen: torch.Generator, device: torch.device,
                  rank: int = 0) -> None:
    """Restore what :func:`rng_state` saved (a rank beyond the saved ones takes the last)."""
    batch_gen.set_state(b64_to_tensor(rng["batches"]))
    mine = rng["per_rank"][min(rank, len(rng["per_rank"]) - 1)]
    torch.set_rng_state(b64_to_tensor(mine["torch"]))
    if mine.get("cuda") and device.type == "cuda":
        torch.cuda.set_rng_state(b64_to_tensor(mine["cuda"]), device)
    random.setstate((rng["python"][0], tuple(rng["python"][1]), rng["python"][2]))
    np.random.set_state((rng["numpy"][0], np.array(rng["numpy"][1], dtype=np.uint32),
                         *rng["numpy"][2:]))


def has_checkpoint(folder: str | os.PathLike) -> bool:
    """True when ``folder`` holds a complete training checkpoint (its train_state.json)."""
    return (Path(folder) / STATE_FILE).is_file()


def save_checkpoint(folder: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer, train_state: dict[str, Any], *,
                    tokenizer: Any = None, scaler: Any = None) -> None:
    """Write a checkpoint of ``model`` (a GPT, not a compiled or DDP wrapper) into ``folder``,
    atomically (see the module docstring). ``train_state`` must be JSON-ready."""
    cfg = model.config
    ckpt_id = uuid.uuid4().hex
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
               if not (cfg.tie_weights and k == "lm_head.weight")}
    config_meta = {"format": "gptlab", "format_version": MODEL_FORMAT_VERSION,
                   "config": cfg.to_dict()}
    opt = {"ckpt_id": ckpt_id, "optimizer": optimizer.state_dict(),
           "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None}
    state = {"format": STATE_FORMAT, "version": STATE_VERSION, "ckpt_id": ckpt_id, **train_state}
    # One top-level key per line; fails here, before any write, if not JSON-ready.
    state_text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, allow_nan=False)}"
                                     for k, v in state.items()) + "\n}\n"
    writers: dict[str, Callable[[str], object]] = {
        "model.safetensors": lambda f: save_file(tensors, f, metadata={
            "format": "pt", "gptlab_ckpt_id": ckpt_id}),
        "config.json": lambda f: Path(f).write_text(json.dumps(config_meta, indent=2) + "\n"),
        "optimizer.pt": lambda f: torch.save(opt, f),
    }
    if tokenizer is not None:
        writers["tokenizer.json"] = lambda f: tokenizer.save(f)
    writers[STATE_FILE] = lambda f: Path(f).write_text(state_text)  # last: it commits the save
    _replace_all(Path(folder), writers)


def _replace_all(folder: Path, writers: dict[str, Callable[[str], object]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmps = {name: folder / f".{name}.{uuid.uuid4().hex}.tmp" for name in writers}
    backup = folder / BACKUP_DIR
    umask = os.umask(0)
    os.umask(umask)
    try:
        for name, write in writers.items():
            write(str(tmps[name]))
            os.chmod(tmps[name], 0o666 & ~umask)  # safetensors writes owner-only files
            with open(tmps[name], "rb+") as f:
                os.fsync(f.fileno())
        shutil.rmtree(backup, ignore_errors=True)
        backup.mkdir()
        for name in writers:  # second names for the current files: the way back
            if (folder / name).is_file():
                _link_or_copy(folder / name, backup / name)
        _fsync_dir(backup)
        done: list[str] = []
        try:
            for name in writers:
                os.replace(tmps[name], folder / name)
                done.append(name)
        except BaseException:
            for name in reversed(done):  # put the previous checkpoint back
                if (backup / name).is_file():
                    os.replace(backup / name, folder / name)
                else:
                    (folder / name).unlink(missing_ok=True)
            shutil.rmtree(backup, ignore_errors=True)
            raise
        _fsync_dir(folder)
        shutil.rmtree(backup, ignore_errors=True)
    finally:
        for tmp in tmps.values():
            tmp.unlink(missing_ok=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # same bytes, no copy; survives src being replaced
    except OSError:  # file systems without hard links
        shutil.copy2(src, dst)


def read_train_state(folder: str | os.PathLike) -> dict[str, Any]:
    """The train_state.json of a checkpoint; FileNotFoundError / ValueError say what is wrong."""
    folder = Path(folder)
    path = folder / STATE_FILE
    if not path.is_file():
        what = ("does not exist" if not folder.exists() else
                "holds a model but no training state (saved with GPT.save?)"
                if (folder / "model.safetensors").is_file() else "holds no checkpoint")
        raise FileNotFoundError(
            f"cannot resume from {folder}: the folder {what} ({STATE_FILE} is missing). "
            "Fix: point out_dir (--out) at the folder of an earlier run, or start a new run "
            "without resume (--resume).")
    try:
        state = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is damaged ({e}); the checkpoint cannot be resumed.") from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT \
            or state.get("version") != STATE_VERSION:
        raise ValueError(f"{path} is not a gptlab training state (format {STATE_FORMAT!r}, "
                         f"version {STATE_VERSION}).")
    return state


def _model_config(folder: Path) -> GPTConfig:
    meta = json.loads((folder / "config.json").read_text())
    if meta.get("format") != "gptlab" or meta.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"{folder / 'config.json'} is not a gptlab model config.")
    return GPTConfig.from_dict(meta["config"])


def check_architecture(folder: str | os.PathLike, config: GPTConfig) -> None:
    """ValueError naming every difference between ``config`` and the checkpoint's model."""
    folder = Path(folder)
    saved = _model_config(folder).to_dict()
    mine = config.to_dict()
    diff = {k: (saved[k], mine[k]) for k in saved if k not in _MAY_DIFFER and saved[k] != mine[k]}
    if diff:
        lines = ", ".join(f"{k}: checkpoint {a!r} vs model {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"the checkpoint in {folder} is of another architecture ({lines}). "
                         "Fix: build the model with the checkpoint's config (GPT.load(folder) or "
                         "the same preset), or train into another out_dir.")


def check_out_dir(out: Path, config: GPTConfig, resume: bool, overwrite: bool,
                  max_steps: int, rank: int = 0) -> None:
    """Before a run: ``out`` must be writable; with ``resume`` it must hold a checkpoint of
    the same architecture below ``max_steps``; without, it must hold none (or ``overwrite``).
    Nothing is written except an empty folder."""
    if resume:
        state = read_train_state(out)  # FileNotFoundError when there is no checkpoint
        check_architecture(out, config)
        if state["step"] >= max_steps:
            raise ValueError(f"the checkpoint in {out} is already at step {state['step']} and "
                             f"max_steps is {max_steps}: nothing to train. Fix: raise "
                             f"max_steps above {state['step']}.")
    elif has_checkpoint(out) and not overwrite:
        raise ValueError(f"{out} already holds a checkpoint (step {read_train_state(out)['step']})"
                         ". Fix: resume=True (--resume) to continue it, overwrite=True "
                         "(--overwrite) to start again, or another out_dir.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{rank}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise PermissionError(f"cannot write checkpoints to out_dir {out}: {e.strerror or e}. "
                              "Fix: choose a folder you can write to (--out DIR).") from e


def _read_consistent(folder: Path, map_location: str | torch.device
                     ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(train state, optimizer file) if the files carry one checkpoint id, else None."""
    try:
        state = read_train_state(folder)
        with safe_open(str(folder / "model.safetensors"), "pt") as f:
            model_id = (f.metadata() or {}).get("gptlab_ckpt_id")
        opt = torch.load(folder / "optimizer.pt", map_location=map_location, weights_only=True)
    except (OSError, ValueError, RuntimeError):
        return None
    if not state.get("ckpt_id") == model_id == opt.get("ckpt_id"):
        return None
    return state, opt


def load_checkpoint(folder: str | os.PathLike, map_location: str | torch.device = "cpu"
                    ) -> dict[str, Any]:
    """Read a checkpoint: {"train_state", "config", "model" (tensors), "optimizer", "scaler"}.

    If an earlier save died half way (the files disagree), the previous checkpoint kept in
    ``.previous/`` is put back first, with a warning.
    """
    folder = Path(folder)
    read_train_state(folder)  # clear error when there is no checkpoint at all
    found = _read_consistent(folder, map_location)
    if found is None:
        backup = folder / BACKUP_DIR
        if not backup.is_dir():
            raise ValueError(f"the checkpoint files in {folder} do not belong together (a save "
                             "was interrupted, or files were copied in from another run) and "
                             "there is no previous checkpoint to fall back on.")
        for f in backup.iterdir():
            os.replace(f, folder / f.name)
        shutil.rmtree(backup, ignore_errors=True)
        warnings.warn(f"a checkpoint save into {folder} was interrupted; restored the previous "
                      "checkpoint.", stacklevel=2)
        found = _read_consistent(folder, map_location)
        if found is None:
            raise ValueError(f"the checkpoint in {folder} is damaged beyond repair.")
    state, opt = found
    return {"train_state": state, "config": _model_config(folder),
            "model": load_file(folder / "model.safetensors"),
            "optimizer": opt["optimizer"], "scaler": opt.get("scaler")}
