"""What every gptlab tokenizer shares: the encode/decode interface and JSON files.

A tokenizer file is plain JSON with a `format` name and a `version`, so that a person can read
it and a program can refuse a file it does not understand. It is never a pickle: loading a
tokenizer cannot run code.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # only for type checkers (Python 3.10 has no typing.Self)
    from typing_extensions import Self

FORMAT_VERSION = 1


class Tokenizer:
    """Base class: text <-> list of integer ids, saved to and loaded from JSON."""

    format_name: ClassVar[str] = ""  # the "format" field of this class's files

    @property
    def vocab_size(self) -> int:
        """Number of distinct ids: every id is in `range(vocab_size)`."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def encode_batch(self, texts: Iterable[str], **kwargs: Any) -> list[list[int]]:
        """Encode each text of `texts` (keyword arguments go to `encode`)."""
        return [self.encode(text, **kwargs) for text in texts]

    def __len__(self) -> int:
        return self.vocab_size

    # -- files ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Everything needed to rebuild this tokenizer, as JSON-ready data."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """Rebuild a tokenizer from `to_dict()` data; ValueError when a field is wrong."""
        raise NotImplementedError

    def save(self, path: str | os.PathLike) -> None:
        """Write the tokenizer to `path` as JSON, atomically (a crash never leaves half a file)."""
        data = {"format": self.format_name, "version": FORMAT_VERSION, **self.to_dict()}
        atomic_write_text(path, to_json(data))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Self:
        """Read a tokenizer saved by `save`; ValueError if the file is damaged or foreign."""
        data = read_tokenizer_json(path)
        if data["format"] != cls.format_name:
            hint = _FORMATS.get(data["format"])
            raise ValueError(
                f"{path} holds a {data['format']!r} file, not {cls.format_name!r}"
                + (f": load it with {hint.__name__}.load" if hint else ""))
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, AttributeError) as e:  # a field missing or of wrong type
            raise ValueError(f"{path} is not a valid {cls.format_name} file ({e!r}); "
                             "save the tokenizer again") from e
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e


_FORMATS: dict[str, type[Tokenizer]] = {}  # format name -> class, filled by `register`


def register(cls: type[Tokenizer]) -> type[Tokenizer]:
    """Class decorator: let `load_tokenizer` recognise this class's files."""
    _FORMATS[cls.format_name] = cls
    return cls


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """Load any gptlab tokenizer file (char or BPE), whichever it is."""
    data = read_tokenizer_json(path)
    cls = _FORMATS.get(data["format"])
    if cls is None:
        raise ValueError(f"{path}: unknown tokenizer format {data['format']!r} "
                         f"(known: {sorted(_FORMATS)})")
    return cls.load(path)


def read_tokenizer_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a tokenizer file and check its header; clear errors for every way it can be wrong."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}: check the path, or save one "
                                "first with tokenizer.save(path)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): the file may be truncated or "
                         "corrupted; save the tokenizer again") from e
    if not isinstance(data, dict) or not isinstance(data.get("format"), str) \
            or not data["format"].startswith("gptlab-"):
        raise ValueError(f"{path} is JSON but not a gptlab tokenizer file (no gptlab 'format' "
                         "field); load files written by tokenizer.save(path)")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {data.get('version')!r}, but this gptlab "
                         f"reads version {FORMAT_VERSION}; use the gptlab that wrote it, or "
                         "train and save the tokenizer again")
    return data


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` (UTF-8) to `path` via a temporary file in the same folder + os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def to_json(data: dict[str, Any]) -> str:
    """JSON with one top-level field per line, one item per line in lists of lists (merges),
    and long lists of numbers in rows of 16, so that files are easy to read and to diff."""
    def dump(value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (see CharTokenizer): escape it
            text = json.dumps(value)
        return text

    lines = []
    for key, value in data.items():
        if isinstance(value, list) and value and isinstance(value[0], list):
            inner = ",\n".join("    " + dump(item) for item in value)
            lines.append(f"  {dump(key)}: [\n{inner}\n  ]")
        elif isinstance(value, list) and len(value) > 16 and isinstance(value[0], int):
            rows = [value[i:i + 16] for i in range(0, len(value), 16)]
            inner = ",\n".join("    " + dump(row)[1:-1] for row in rows)
            lines.append(f"  {dump(key)}: [\n{inner}\n  ]")
        else:
            lines.append(f"  {dump(key)}: {dump(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def as_id_list(ids: Iterable[int]) -> list[int]:
    """Accept a list, tuple, numpy array or torch tensor of ids."""
    if hasattr(ids, "tolist"):  # numpy arrays and torch tensors
        ids = ids.tolist()
    return ids if isinstance(ids, list) else list(ids)


def check_ids(ids: list[int], vocab_size: int) -> None:
    """ValueError naming the first id outside `range(vocab_size)`."""
    if ids and (min(ids) < 0 or max(ids) >= vocab_size):
        pos, bad = next((p, i) for p, i in enumerate(ids) if not 0 <= i < vocab_size)
        raise ValueError(f"id {bad} at position {pos} is out of range: this tokenizer has "
                         f"vocab_size {vocab_size} (ids 0..{vocab_size - 1}); were these ids "
                         "made by another tokenizer?")
