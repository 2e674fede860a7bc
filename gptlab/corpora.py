"""Named data files: where they come from, where they live, and how to fetch them safely.

Every file the course needs from the internet is registered here with its URL, its size in
bytes and its sha256 checksum. Asking for a file looks in three places, in this order:

1. the folder in the ``GPTLAB_DATA_DIR`` environment variable (read only: a shared or
   offline copy, e.g. a USB stick or a folder prepared by a teacher),
2. the user cache (``GPTLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/gptlab``, else
   ``~/.cache/gptlab``),
3. a download into the cache, with a progress bar, checked against the size and sha256.

Downloads are atomic: bytes go to a temporary file next to the destination, which is renamed
into place only once it is complete and verified. A crash or a dropped connection never
leaves a half file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm.auto import tqdm

__all__ = [
    "REGISTRY",
    "DataNotFoundError",
    "DownloadError",
    "Entry",
    "RemoteFile",
    "available_offline",
    "cache_dir",
    "corpus_path",
    "data_dir",
    "download",
    "download_file",
    "ensure_file",
    "ensure_files",
    "gpt2_tokenizer_files",
    "sha256_file",
]

_CHUNK = 1 << 16  # 64 KiB: small enough for a smooth progress bar, big enough to be fast


@dataclass(frozen=True)
class RemoteFile:
    """One file on the internet: ``relpath`` is its name inside the data dir and the cache."""

    relpath: str
    url: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Entry:
    """A named download: one corpus file, or a bundle of files used together."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    is_corpus: bool = False


REGISTRY: dict[str, Entry] = {
    "tinyshakespeare": Entry(
        "tinyshakespeare",
        "Tiny Shakespeare: ~40,000 lines of Shakespeare's plays, the corpus of char-rnn and nanoGPT",
        (RemoteFile(
            "tinyshakespeare.txt",
            "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            1115394, "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"),),
        is_corpus=True,
    ),
    "gpt2-tokenizer": Entry(
        "gpt2-tokenizer",
        "GPT-2's tokenizer files: encoder.json (token -> id) and vocab.bpe (the merges)",
        (RemoteFile(
            "gpt2/encoder.json",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json",
            1042301, "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
         RemoteFile(
            "gpt2/vocab.bpe",
            "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe",
            456318, "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5")),
    ),
}


class DataNotFoundError(FileNotFoundError):
    """A registered file is not on this machine and could not be downloaded."""


class DownloadError(OSError):
    """A download started but did not finish (dropped connection, truncated body)."""


# ---------------------------------------------------------------- where files live

def _env_path(var: str) -> Path | None:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser() if value else None


def data_dir() -> Path | None:
    """The read-only folder named by ``GPTLAB_DATA_DIR``, or None when it is not set."""
    return _env_path("GPTLAB_DATA_DIR")


def cache_dir() -> Path:
    """The folder where downloads are kept (it may not exist yet)."""
    explicit = _env_path("GPTLAB_CACHE_DIR")
    if explicit is not None:
        return explicit
    xdg = _env_path("XDG_CACHE_HOME")
    return (xdg if xdg is not None else Path.home() / ".cache") / "gptlab"


def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in chunks so big files do not fill memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=64)
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    # Keyed on mtime and size, so a file replaced on disk is hashed again.
    return sha256_file(path)


def _is_good(path: Path, rf: RemoteFile) -> bool:
    """True when ``path`` holds exactly the registered bytes."""
    st = path.stat()
    return st.st_size == rf.size and _sha256_cached(str(path), st.st_mtime_ns, st.st_size) == rf.sha256


def _files(name: str) -> tuple[RemoteFile, ...]:
    """The files of a registered name, or the one registered file whose relpath is ``name``."""
    if name in REGISTRY:
        return REGISTRY[name].files
    for entry in REGISTRY.values():
        for rf in entry.files:
            if rf.relpath == name:
                return (rf,)
    raise ValueError(f"unknown data name {name!r}; known names: {', '.join(sorted(REGISTRY))}")


def _locate(rf: RemoteFile) -> Path | None:
    """Find a verified local copy of ``rf`` (data dir first, then cache), without downloading."""
    root = data_dir()
    if root is not None and (root / rf.relpath).is_file():
        path = root / rf.relpath
        if not _is_good(path, rf):
            # A wrong file in a folder the user chose is a mistake to report, not to hide.
            raise ValueError(
                f"{path} (from GPTLAB_DATA_DIR) does not match the registered file: expected "
                f"{rf.size} bytes with sha256 {rf.sha256}, got {path.stat().st_size} bytes with "
                f"sha256 {sha256_file(path)}. Replace it with the original from {rf.url}, or "
                "remove it to use the cache instead."
            )
        return path
    cached = cache_dir() / rf.relpath
    if cached.is_file():
        if _is_good(cached, rf):
            return cached
        cached.unlink()  # our own cache should never be wrong; drop it and fetch again
    return None


def available_offline(name: str) -> Path | None:
    """Where ``name`` is on this machine without downloading, or None.

    For a bundle (several files) this is the path of its first file, and only when every
    file of the bundle is present.
    """
    paths = [_locate(rf) for rf in _files(name)]
    return paths[0] if all(p is not None for p in paths) else None


# ---------------------------------------------------------------- downloading

def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None,
                  size: int | None = None, timeout: float = 30.0, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, checking ``size`` and ``sha256`` when given.

    Raises ConnectionError when the server cannot be reached (offline, refused, HTTP error),
    DownloadError when the connection drops mid-way, and ValueError when the bytes are not
    the expected ones. In every failing case nothing is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # The temp file sits in the destination folder, so the final rename stays on one disk
    # and is atomic; its name starts with a dot so it never looks like a finished file.
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as response:
            header = response.headers.get("Content-Length")
            announced = int(header) if header and header.isdigit() else None
            digest, received = hashlib.sha256(), 0
            with tqdm(total=size or announced, unit="B", unit_scale=True, unit_divisor=1024,
                      desc=dest.name, disable=not progress) as bar:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:  # reset, timeout
                        raise DownloadError(_broken(url, received, announced, e)) from e
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            # urllib returns b"" when a server hangs up early, so count the bytes ourselves.
            if announced is not None and received < announced:
                raise DownloadError(_broken(url, received, announced, "closed early"))
            if size is not None and received != size:
                raise ValueError(f"size mismatch for {url}: expected {size} bytes, got "
                                 f"{received}; the file was not saved")
            got = digest.hexdigest()
            if sha256 is not None and got != sha256.lower():
                raise ValueError(f"checksum mismatch for {url}: expected sha256 {sha256}, got "
                                 f"{got}; the file was not saved")
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, dest)
    except BaseException:  # also Ctrl-C: never leave the temp file behind
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(dest.parent)
    return dest


def _broken(url: str, received: int, announced: int | None, why: object) -> str:
    of = f" of {announced}" if announced is not None else ""
    return (f"the connection to {url} broke after {received}{of} bytes ({why}); "
            "nothing was saved, try again")


def _open(url: str, timeout: float) -> http.client.HTTPResponse:
    """Open ``url``; any failure before the first byte becomes a ConnectionError."""
    request = urllib.request.Request(url, headers={"User-Agent": "gptlab"})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise ConnectionError(f"could not download {url}: the server answered HTTP {e.code} "
                              f"{e.reason}") from e
    except (urllib.error.URLError, OSError) as e:  # offline, refused, DNS, timeout
        raise ConnectionError(f"could not connect to {url}: {getattr(e, 'reason', e)}") from e


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX only; Windows has no directory handles)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _not_found_message(name: str, rf: RemoteFile, reason: object) -> str:
    root = data_dir()
    where = [f"  - GPTLAB_DATA_DIR: {root / rf.relpath if root else '(not set)'}"
             + ("  <- this folder does not exist" if root and not root.is_dir() else ""),
             f"  - cache: {cache_dir() / rf.relpath}"]
    return "\n".join([
        (f"{rf.relpath!r} ({name}) is not on this machine and could not be downloaded "
         f"from {rf.url}"),
        f"  ({reason})",
        "Looked in:", *where,
        "To fix it, either:",
        (f"  1. on a machine with internet, run `gptlab data download {name}`, then copy the "
         f"{rf.relpath} it prints to {cache_dir() / rf.relpath} on this machine; or"),
        f"  2. put the file at <folder>/{rf.relpath} and set GPTLAB_DATA_DIR=<folder>.",
    ])


def ensure_files(name: str, *, progress: bool = True) -> tuple[Path, ...]:
    """Local paths of every file of ``name``, downloading into the cache whatever is missing."""
    paths = []
    for rf in _files(name):
        path = _locate(rf)
        if path is None:
            try:
                path = download_file(rf.url, cache_dir() / rf.relpath, sha256=rf.sha256,
                                     size=rf.size, progress=progress)
            except ConnectionError as e:
                raise DataNotFoundError(_not_found_message(name, rf, e)) from e
        paths.append(path)
    return tuple(paths)


def ensure_file(name: str, *, progress: bool = True) -> Path:
    """Local path of a one-file name (e.g. ``"tinyshakespeare"`` or ``"gpt2/vocab.bpe"``)."""
    if len(_files(name)) != 1:
        raise ValueError(f"{name!r} is a bundle of several files; use ensure_files({name!r})")
    return ensure_files(name, progress=progress)[0]


def corpus_path(name: str) -> Path:
    """Local path of a registered corpus, downloading it if needed."""
    if name not in REGISTRY or not REGISTRY[name].is_corpus:
        corpora = sorted(n for n, e in REGISTRY.items() if e.is_corpus)
        raise ValueError(f"{name!r} is not a registered corpus; known: {', '.join(corpora)}")
    return ensure_file(name)


def gpt2_tokenizer_files() -> tuple[Path, Path]:
    """Paths of GPT-2's ``encoder.json`` and ``vocab.bpe`` (for ``BPETokenizer.from_gpt2_files``)."""
    encoder_json, vocab_bpe = ensure_files("gpt2-tokenizer")
    return encoder_json, vocab_bpe


def download(name: str | None = None) -> list[Path]:
    """Fetch ``name`` (or, with None, everything registered) and say where each file is.

    This is what ``gptlab data download [NAME]`` runs. Files already present (in
    GPTLAB_DATA_DIR or the cache) are not downloaded again.
    """
    names = sorted(REGISTRY) if name is None else [name]
    paths: list[Path] = []
    for n in names:
        for rf, path in zip(_files(n), ensure_files(n)):
            print(f"{n}: {rf.relpath} -> {path}")
            paths.append(path)
    print(f"cache folder: {cache_dir()}")
    return paths
