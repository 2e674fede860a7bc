"""Hooks into the training loop: progress bar, log files, and your own functions.

The trainer reports everything it measures as small dicts ("records"):

    {"kind": "train", "step": 120, "loss": 2.31, "lr": 9.8e-4, "grad_norm": 0.41,
     "tokens_per_s": 51200.0, "mfu": None, "elapsed_s": 12.5}
    {"kind": "eval", "step": 200, "train_loss": 2.05, "val_loss": 2.11, "elapsed_s": 20.1}

A callback is a :class:`Callback` (override what you need) or simply a function, which then
gets every record: ``train(..., callbacks=[lambda r: print(r)])``. Under DDP only rank 0 calls
callbacks. ``step`` counts optimizer steps done.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["CSV_FIELDS", "CSVLogger", "Callback", "FunctionCallback", "JSONLLogger",
           "ProgressBar", "read_log"]


class Callback:
    """Override any of these; ``trainer`` is the running :class:`gptlab.train.Trainer`."""

    def on_train_start(self, trainer: Any) -> None: ...

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None: ...

    def on_checkpoint(self, trainer: Any, path: Path) -> None: ...

    def on_train_end(self, trainer: Any) -> None:
        """Called at the end, also when training stops with an error."""


class FunctionCallback(Callback):
    """Wraps ``fn(record)`` as a callback."""

    def __init__(self, fn: Callable[[dict[str, Any]], object]) -> None:
        self.fn = fn

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        self.fn(record)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


class ProgressBar(Callback):
    """A tqdm.auto bar over the steps, showing the latest train and val loss."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.loss: float | None = None
        self.val: float | None = None

    def on_train_start(self, trainer: Any) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.config.max_steps, initial=trainer.step, desc="training",
                        unit="step", dynamic_ncols=True)

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.bar is None:
            return
        if record["kind"] == "eval":
            self.val = record.get("val_loss", record.get("train_loss"))
        else:
            self.loss = record["loss"]
            self.bar.update(max(0, record["step"] - self.bar.n))
        self.bar.set_postfix_str(f"loss {_fmt(self.loss)} val {_fmt(self.val)}", refresh=False)

    def on_train_end(self, trainer: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """JSON has no NaN: non-finite floats become strings ("nan", "inf")."""
    return {k: (str(v) if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in record.items()}


def read_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a log.jsonl file (skipping a last line cut short by a crash)."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class _FileLogger(Callback):
    """Appends to ``out_dir/filename``; a fresh run starts the file anew, a resumed run keeps
    the records up to its checkpoint's step (later ones were not part of the resumed run)."""

    filename = ""

    def __init__(self, path: str | os.PathLike | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.file: Any = None

    def _keep(self, path: Path, upto: int) -> str:
        raise NotImplementedError

    def on_train_start(self, trainer: Any) -> None:
        if self.path is None:
            self.path = Path(trainer.config.out_dir) / self.filename
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = self._keep(self.path, trainer.step) if trainer.step and self.path.is_file() else ""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(kept)
        os.replace(tmp, self.path)
        self.file = open(self.path, "a", newline="")  # noqa: SIM115 (closed in on_train_end)

    def on_train_end(self, trainer: Any) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class JSONLLogger(_FileLogger):
    """One JSON record per line in ``out_dir/log.jsonl`` (read back with :func:`read_log`)."""

    filename = "log.jsonl"

    def _keep(self, path: Path, upto: int) -> str:
        return "".join(json.dumps(r) + "\n" for r in read_log(path) if r.get("step", 0) <= upto)

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(_clean(record)) + "\n")
            self.file.flush()


CSV_FIELDS = ["kind", "step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "train_loss",
              "val_loss", "elapsed_s"]


class CSVLogger(_FileLogger):
    """The same records as a spreadsheet: ``out_dir/log.csv``, one row each."""

    filename = "log.csv"

    def _keep(self, path: Path, upto: int) -> str:
        with open(path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r.get("step") or 0) <= upto]
        return ",".join(CSV_FIELDS) + "\r\n" + "".join(self._row(r) for r in rows)

    @staticmethod
    def _row(record: dict[str, Any]) -> str:
        import io

        buf = io.StringIO()
        csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore").writerow(
            {k: ("" if v is None else v) for k, v in record.items()})
        return buf.getvalue()

    def on_train_start(self, trainer: Any) -> None:
        super().on_train_start(trainer)
        if self.file.tell() == 0:
            self.file.write(",".join(CSV_FIELDS) + "\r\n")

    def on_log(self, trainer: Any, record: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(self._row(record))
            self.file.flush()
