"""Text corpora for training: load, clean, deduplicate, split and describe.

A corpus is one string. It can come from:

- a registered name, e.g. ``load_corpus("tinyshakespeare")`` (fetched and verified by
  :mod:`gptlab.corpora`, which also finds offline copies),
- ``"python-stdlib"``: the Python source files of your own Python installation, so every
  lesson works with no network at all,
- your own text: a path to a ``.txt``/``.md`` file, or to a folder of them.

Loading gives the text exactly as stored (decoded as UTF-8, a leading byte-order mark
dropped). Cleaning is a separate, explicit step: :func:`clean_text`, :func:`deduplicate`.
"""

from __future__ import annotations

import os
import re
import sysconfig
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

from gptlab import corpora as _corpora
from gptlab.corpora import (  # noqa: F401  (re-exported: `from gptlab.data import ...`)
    REGISTRY,
    DataNotFoundError,
    DownloadError,
    cache_dir,
    corpus_path,
    data_dir,
    download,
    download_file,
    ensure_file,
    ensure_files,
    gpt2_tokenizer_files,
)

STDLIB_CORPUS = "python-stdlib"
STDLIB_MAX_CHARS = 1_000_000  # about the size of tinyshakespeare
TEXT_SUFFIXES = (".txt", ".md")

S = TypeVar("S")  # anything that slices: str, list, numpy array, torch tensor


def list_corpora() -> list[str]:
    """Names that :func:`load_corpus` accepts (besides paths to your own files)."""
    return sorted([n for n, e in _corpora.REGISTRY.items() if e.is_corpus] + [STDLIB_CORPUS])


def available_offline(name: str) -> Path | None:
    """Where corpus or download ``name`` is on this machine, or None; never downloads.

    ``"python-stdlib"`` is always available: its answer is the standard library folder.
    """
    if name == STDLIB_CORPUS:
        return Path(sysconfig.get_paths()["stdlib"])
    return _corpora.available_offline(name)


# ---------------------------------------------------------------- loading

def read_text(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file, with errors that say what to do."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except PermissionError as e:
        raise PermissionError(f"cannot read {path}: permission denied. Make it readable "
                              f"(e.g. `chmod u+r {path}`) or copy it somewhere you own.") from e
    try:
        return raw.decode("utf-8-sig")  # -sig: drop a byte-order mark that some editors add
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(
            f"{path} is not UTF-8 text: byte 0x{raw[e.start]:02x} at byte offset {e.start} "
            f"(line {line}) cannot be decoded. Re-encode the file as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 in.txt > out.txt`, or in Python: "
            f"p.write_text(p.read_text(encoding='latin-1'), encoding='utf-8')."
        ) from e


def corpus_files(folder: str | os.PathLike) -> list[Path]:
    """The ``.txt``/``.md`` files under ``folder``, in a fixed order (sorted relative paths).

    Hidden files and folders (``.git``, ``.ipynb_checkpoints``) are skipped.
    """
    folder = Path(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, f) for f in files
                  if not f.startswith(".") and f.lower().endswith(TEXT_SUFFIXES)]
    # Sorting on the relative POSIX path gives the same order on every OS and file system.
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def load_documents(folder: str | os.PathLike) -> list[str]:
    """One string per non-empty text file under ``folder`` (see :func:`corpus_files`)."""
    docs = [read_text(p) for p in corpus_files(folder)]
    return [d for d in docs if d.strip()]


@lru_cache(maxsize=1)
def stdlib_corpus(max_chars: int = STDLIB_MAX_CHARS) -> str:
    """Python source code from this Python's standard library: an always-available corpus.

    Public top-level modules (``abc.py``, ``argparse.py``, ...) are taken in sorted order and
    whole files are added until ``max_chars`` is reached, so the text is the same on every
    call (it differs between Python versions, as their libraries differ).
    """
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.glob("*.py") if not p.name.startswith("_"))
    parts: list[str] = []
    total = 0
    for p in files:
        source = p.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        piece = f"# ---- {p.name} ----\n{source.strip()}\n"
        if total + len(piece) > max_chars:
            break
        parts.append(piece)
        total += len(piece) + 1
    if not parts:
        raise ValueError(f"found no Python sources in {stdlib} to build the {STDLIB_CORPUS!r} "
                         "corpus; use another corpus or a path to your own text")
    return "\n".join(parts)


def load_corpus(name_or_path: str | os.PathLike) -> str:
    """The text of a corpus: a registered name, ``"python-stdlib"``, a file, or a folder.

    A folder gives all its ``.txt``/``.md`` files, in sorted order, joined by one blank line.
    A string is first looked up as a name; pass a ``Path`` to mean a file of the same name.
    """
    key = name_or_path
    if isinstance(key, str) and key == STDLIB_CORPUS:
        return stdlib_corpus()
    if isinstance(key, str) and key in _corpora.REGISTRY and _corpora.REGISTRY[key].is_corpus:
        path: Path = corpus_path(key)
        text = read_text(path)
    else:
        path = Path(key).expanduser()
        if path.is_dir():
            docs = load_documents(path)
            if not docs:
                raise ValueError(f"the folder {path} holds no non-empty "
                                 f"{'/'.join(TEXT_SUFFIXES)} files; add some text files to it")
            text = "\n\n".join(d.strip("\n") for d in docs) + "\n"
        elif path.is_file():
            text = read_text(path)
        else:
            raise ValueError(
                f"unknown corpus {str(key)!r}: it is not a known name and no file or folder "
                f"exists at {path.resolve()}. Known names: {', '.join(list_corpora())}. "
                "A path to a text file or to a folder of .txt/.md files also works.")
    if not text.strip():
        raise ValueError(f"the corpus {path} is empty; a language model needs text to learn from")
    return text


# ---------------------------------------------------------------- cleaning

# C0 and C1 control characters, except the two that carry layout: \t and \n.
_CONTROL = {c: None for c in [*range(0x20), *range(0x7F, 0xA0)] if c not in (0x09, 0x0A)}


def clean_text(text: str, normalize: str | None = "NFC", *, newlines: bool = True,
               strip_trailing: bool = True, remove_control: bool = True) -> str:
    """Tidy text without changing its words.

    - ``normalize``: Unicode normal form ("NFC", "NFKC", "NFD", "NFKD") or None. NFC makes
      "é" one code point however it was typed; NFKC also folds look-alikes ("ﬁ" -> "fi").
    - ``newlines``: Windows (CRLF) and old Mac (CR) line ends become LF.
    - ``strip_trailing``: drop spaces and tabs at the end of each line (invisible noise).
    - ``remove_control``: delete control characters (NUL, escape, ...) except tab and newline.
    """
    if normalize is not None:
        if normalize not in ("NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(f"normalize must be 'NFC', 'NFKC', 'NFD', 'NFKD' or None, "
                             f"not {normalize!r}")
        text = unicodedata.normalize(normalize, text)
    if newlines:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if remove_control:
        text = text.translate(_CONTROL)
    if strip_trailing:
        text = re.sub(r"[^\S\n]+$", "", text, flags=re.MULTILINE)
    return text


@dataclass(frozen=True)
class Deduplicated:
    """What :func:`deduplicate` returns: the new text and how many units it kept or removed."""

    text: str
    unit: str
    kept: int
    removed: int

    @property
    def fraction_removed(self) -> float:
        return self.removed / max(1, self.kept + self.removed)


_PARAGRAPH_BREAK = re.compile(r"(\n[^\S\n]*\n(?:[^\S\n]*\n)*)")  # one or more blank lines


def deduplicate(text: str, unit: Literal["paragraph", "line"] = "paragraph", *,
                min_chars: int = 0) -> Deduplicated:
    """Remove exact repeats of a paragraph (or line), keeping first occurrences in order.

    A paragraph is a run of lines between blank lines: in a play, one speech. Paragraphs are
    the default unit because short lines ("ROMEO:", "Exeunt.") repeat legitimately, while a
    repeated paragraph is usually copied boilerplate (licence headers, navigation text).
    Blank lines are never duplicates, and the text between kept units is left unchanged.

    Units shorter than ``min_chars`` are always kept. Even whole speeches repeat in a play:
    tinyshakespeare has 74 repeated paragraphs, all short ("ROMEO:\nAy."); with
    ``min_chars=50`` none of them is removed. Only exact repeats are found: run
    :func:`clean_text` first so that near-copies (trailing spaces, CRLF) become equal.
    """
    if unit not in ("paragraph", "line"):
        raise ValueError(f"unit must be 'paragraph' or 'line', not {unit!r}")
    seen: set[str] = set()
    removed = kept = 0

    def is_repeat(u: str) -> bool:
        nonlocal removed, kept
        if u.strip() and len(u) >= min_chars and u in seen:
            removed += 1
            return True
        if u.strip():
            seen.add(u)
            kept += 1
        return False

    if unit == "line":
        lines = [line for line in text.split("\n") if not is_repeat(line)]
        return Deduplicated("\n".join(lines), unit, kept, removed)
    # Keep trailing whitespace aside, so "A\n\nA\n" sees two equal paragraphs "A".
    body = text.rstrip()
    tail = text[len(body):]
    parts = _PARAGRAPH_BREAK.split(body)  # [para, break, para, break, ..., para]
    out = [parts[0]]
    is_repeat(parts[0])  # the first paragraph is never a repeat, but it must be seen
    for i in range(1, len(parts), 2):
        brk, para = parts[i], parts[i + 1]
        if not is_repeat(para):  # a repeat goes together with the break before it
            out += [brk, para]
    return Deduplicated("".join(out) + tail, unit, kept, removed)


# ---------------------------------------------------------------- splitting

def split_index(length: int, val_fraction: float = 0.1) -> int:
    """Where the validation part starts: ``int(length * (1 - val_fraction))``, as in nanoGPT."""
    if isinstance(val_fraction, bool) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction!r}")
    n = int(length * (1 - val_fraction))
    if n < 1 or n >= length:
        raise ValueError(f"{length} items are too few to split with val_fraction={val_fraction}: "
                         "train and validation would not both be non-empty; use more text")
    return n


def train_val_split(data: S, val_fraction: float = 0.1) -> tuple[S, S]:
    """Split into ``(train, val)``: the first part trains, the last ``val_fraction`` validates.

    The split is contiguous, never shuffled: shuffled characters or windows would put nearly
    the same text on both sides, and validation loss would then flatter the model. With
    ``val_fraction=0.1`` this is exactly nanoGPT's split, so losses can be compared.
    Works on anything that slices: str, list, numpy array, torch tensor.
    """
    n = split_index(len(data), val_fraction)  # type: ignore[arg-type]
    return data[:n], data[n:]  # type: ignore[index]


def split_documents(documents: Sequence[str], val_fraction: float = 0.1, *,
                    seed: int | None = None) -> tuple[list[str], list[str]]:
    """Split whole documents (files, paragraphs) into train and validation lists.

    No document is ever cut in two. With ``seed=None`` the last documents validate, as in
    :func:`train_val_split`; with a seed the documents are shuffled first (reproducibly).
    """
    docs = list(documents)
    if seed is not None:
        import random
        random.Random(seed).shuffle(docs)
    n = split_index(len(docs), val_fraction)
    return docs[:n], docs[n:]


# ---------------------------------------------------------------- describing

@dataclass(frozen=True)
class CorpusStats:
    """A few numbers worth knowing about a corpus before training on it."""

    characters: int
    bytes_utf8: int
    lines: int
    words: int
    unique_characters: int
    most_common: list[tuple[str, int]]  # (character, count), most frequent first

    def __str__(self) -> str:
        top = " ".join(f"{c!r}:{n}" for c, n in self.most_common[:10])
        return (f"{self.characters:,} characters ({self.bytes_utf8:,} bytes in UTF-8), "
                f"{self.lines:,} lines, {self.words:,} words, "
                f"{self.unique_characters} distinct characters; most common: {top}")


def corpus_stats(text: str, top: int = 20) -> CorpusStats:
    """Count characters, bytes, lines, words and the ``top`` most common characters."""
    counts = Counter(text)
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    return CorpusStats(
        characters=len(text), bytes_utf8=len(text.encode("utf-8")), lines=lines,
        words=len(text.split()), unique_characters=len(counts),
        most_common=counts.most_common(top),
    )
