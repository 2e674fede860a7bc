"""Tests for gptlab.corpora (registry, lookup, download) and gptlab.data (load, clean, split).

Downloads run for real against a small HTTP server on 127.0.0.1; nothing touches the internet.
"""

from __future__ import annotations

import hashlib
import http.server
import math
import os
import socket
import threading
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptlab import corpora, data
from gptlab.corpora import DataNotFoundError, DownloadError, Entry, RemoteFile, download_file

BODY = b"To be, or not to be, that is the question.\n" * 3000  # ~130 kB: several chunks
BODY_SHA = hashlib.sha256(BODY).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        _Handler.hits[self.path] = _Handler.hits.get(self.path, 0) + 1
        if self.path not in ("/good.txt", "/drop.txt"):
            self.send_error(404)
            return
        self.send_response(200)
        # /drop.txt promises twice the bytes it sends, then hangs up: a dropped connection.
        length = len(BODY) * (2 if self.path == "/drop.txt" else 1)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(BODY)
        self.wfile.flush()

    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def closed_url() -> str:
    """A URL on a port where nothing listens: what being offline looks like."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/good.txt"


@pytest.fixture
def dirs(tmp_path, monkeypatch):
    """An empty data dir and an empty cache, so no test sees the real ones."""
    data_dir, cache = tmp_path / "data", tmp_path / "cache"
    data_dir.mkdir()
    monkeypatch.setenv("GPTLAB_DATA_DIR", str(data_dir))
    monkeypatch.setenv("GPTLAB_CACHE_DIR", str(cache))
    return data_dir, cache


def register(monkeypatch, url: str, name: str = "testcorpus", relpath: str = "test/corpus.txt",
             sha: str = BODY_SHA) -> RemoteFile:
    rf = RemoteFile(relpath, url, len(BODY), sha)
    monkeypatch.setitem(corpora.REGISTRY, name, Entry(name, "a test corpus", (rf,), True))
    return rf


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---------------------------------------------------------------- download_file

def test_download_good_file_is_verified_and_atomic(server, tmp_path):
    dest = tmp_path / "sub" / "good.txt"
    got = download_file(f"{server}/good.txt", dest, sha256=BODY_SHA, size=len(BODY))
    assert got == dest and dest.read_bytes() == BODY
    assert leftovers(dest.parent) == ["good.txt"]  # no temp file left beside it
    dest.write_bytes(b"old")  # an existing file is replaced whole
    download_file(f"{server}/good.txt", dest, progress=False)
    assert dest.read_bytes() == BODY


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    dest = tmp_path / "good.txt"
    url = f"{server}/good.txt"
    with pytest.raises(ValueError, match="checksum mismatch") as err:
        download_file(url, dest, sha256="0" * 64, progress=False)
    assert "0" * 64 in str(err.value) and BODY_SHA in str(err.value) and url in str(err.value)
    assert leftovers(tmp_path) == []
    dest.write_bytes(b"the good old file")  # a failed download never harms what was there
    with pytest.raises(ValueError, match="size mismatch"):
        download_file(url, dest, size=len(BODY) + 1, progress=False)
    assert dest.read_bytes() == b"the good old file" and leftovers(tmp_path) == ["good.txt"]


def test_dropped_connection_leaves_no_partial_file(server, tmp_path):
    with pytest.raises(DownloadError, match=f"after {len(BODY)} of {2 * len(BODY)} bytes"):
        download_file(f"{server}/drop.txt", tmp_path / "drop.txt", progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_server_raises_connection_error(server, closed_url, tmp_path):
    with pytest.raises(ConnectionError, match="could not connect"):
        download_file(closed_url, tmp_path / "x.txt", progress=False)
    with pytest.raises(ConnectionError, match="HTTP 404"):
        download_file(f"{server}/missing.txt", tmp_path / "x.txt", progress=False)
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------- lookup order and cache

def test_ensure_file_downloads_once_into_the_cache(server, closed_url, dirs, monkeypatch):
    _, cache = dirs
    _Handler.hits.pop("/good.txt", None)
    register(monkeypatch, f"{server}/good.txt")
    assert corpora.available_offline("testcorpus") is None
    path = corpora.ensure_file("testcorpus", progress=False)
    assert path == cache / "test" / "corpus.txt" and path.read_bytes() == BODY
    register(monkeypatch, closed_url)  # now "offline": the cached copy is enough
    assert corpora.ensure_file("testcorpus") == path
    assert corpora.available_offline("testcorpus") == path
    assert data.load_corpus("testcorpus") == BODY.decode()
    assert _Handler.hits["/good.txt"] == 1


def test_data_dir_beats_cache(dirs, closed_url, monkeypatch):
    data_dir, cache = dirs
    register(monkeypatch, closed_url)
    for root in (data_dir, cache):
        (root / "test").mkdir(parents=True)
        (root / "test" / "corpus.txt").write_bytes(BODY)
    assert corpora.ensure_file("testcorpus") == data_dir / "test" / "corpus.txt"
    assert corpora.ensure_file("test/corpus.txt") == data_dir / "test" / "corpus.txt"
    (data_dir / "test" / "corpus.txt").unlink()
    assert corpora.ensure_file("testcorpus") == cache / "test" / "corpus.txt"
    monkeypatch.delenv("GPTLAB_DATA_DIR")
    assert corpora.available_offline("testcorpus") == cache / "test" / "corpus.txt"


def test_wrong_file_in_data_dir_is_reported(dirs, closed_url, monkeypatch):
    data_dir, _ = dirs
    register(monkeypatch, closed_url)
    (data_dir / "test").mkdir()
    (data_dir / "test" / "corpus.txt").write_bytes(BODY[:-1])
    with pytest.raises(ValueError, match="GPTLAB_DATA_DIR.*does not match"):
        corpora.ensure_file("testcorpus")


def test_corrupt_cache_file_is_fetched_again(server, dirs, monkeypatch):
    _, cache = dirs
    register(monkeypatch, f"{server}/good.txt")
    (cache / "test").mkdir(parents=True)
    (cache / "test" / "corpus.txt").write_bytes(b"x" * len(BODY))  # right size, wrong bytes
    assert corpora.ensure_file("testcorpus", progress=False).read_bytes() == BODY


def test_offline_error_names_file_url_and_remedies(dirs, closed_url, monkeypatch):
    _, cache = dirs
    register(monkeypatch, closed_url)
    for call in (lambda: corpora.ensure_file("testcorpus"),
                 lambda: data.load_corpus("testcorpus")):
        with pytest.raises(FileNotFoundError) as err:
            call()
        msg = str(err.value)
        assert isinstance(err.value, DataNotFoundError)
        assert "test/corpus.txt" in msg and closed_url in msg
        assert "gptlab data download testcorpus" in msg and "GPTLAB_DATA_DIR" in msg
        assert str(cache) in msg
    assert leftovers(cache / "test") == []


def test_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GPTLAB_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert corpora.cache_dir() == tmp_path / ".cache" / "gptlab"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert corpora.cache_dir() == tmp_path / "xdg" / "gptlab"
    monkeypatch.setenv("GPTLAB_CACHE_DIR", str(tmp_path / "mine"))
    assert corpora.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("GPTLAB_DATA_DIR", "")
    assert corpora.data_dir() is None


def test_download_everything_reports_paths(server, dirs, monkeypatch, capsys):
    _, cache = dirs
    rf = RemoteFile("a.txt", f"{server}/good.txt", len(BODY), BODY_SHA)
    rf2 = RemoteFile("b/b.txt", f"{server}/good.txt", len(BODY), BODY_SHA)
    monkeypatch.setattr(corpora, "REGISTRY", {"one": Entry("one", "", (rf,), True),
                                              "two": Entry("two", "", (rf2,))})
    paths = corpora.download()
    assert paths == [cache / "a.txt", cache / "b" / "b.txt"]
    out = capsys.readouterr().out
    assert str(cache / "a.txt") in out and "cache folder" in out
    assert data.list_corpora() == ["one", "python-stdlib"]
    with pytest.raises(ValueError, match="one, two"):
        corpora.download("nope")


def test_registry_facts():
    shakespeare = corpora.REGISTRY["tinyshakespeare"]
    assert shakespeare.is_corpus and shakespeare.files[0].relpath == "tinyshakespeare.txt"
    assert [f.relpath for f in corpora.REGISTRY["gpt2-tokenizer"].files] == [
        "gpt2/encoder.json", "gpt2/vocab.bpe"]
    with pytest.raises(ValueError, match="bundle"):
        corpora.ensure_file("gpt2-tokenizer")
    with pytest.raises(ValueError, match="not a registered corpus"):
        corpora.corpus_path("gpt2-tokenizer")


# ---------------------------------------------------------------- the real reference files

SHARED = Path(os.environ.get("GPTLAB_DATA_DIR", "") or "/nonexistent")
needs_shared = pytest.mark.skipif(
    not (SHARED / "tinyshakespeare.txt").is_file(),
    reason="GPTLAB_DATA_DIR is not set to a folder holding tinyshakespeare.txt")


@needs_shared
def test_tinyshakespeare_from_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTLAB_DATA_DIR", str(SHARED))
    monkeypatch.setenv("GPTLAB_CACHE_DIR", str(tmp_path))  # must not be needed
    text = data.load_corpus("tinyshakespeare")
    rf = corpora.REGISTRY["tinyshakespeare"].files[0]
    assert hashlib.sha256(text.encode("utf-8")).hexdigest() == rf.sha256
    assert len(text) == 1115394 and text.startswith("First Citizen:")
    assert data.corpus_path("tinyshakespeare") == SHARED / "tinyshakespeare.txt"
    train, val = data.train_val_split(text)
    n = int(len(text) * 0.9)  # nanoGPT's shakespeare_char/prepare.py
    assert (train, val) == (text[:n], text[n:]) and len(train) == 1003854
    stats = data.corpus_stats(text)
    assert (stats.lines, stats.unique_characters) == (40000, 65)
    assert data.deduplicate(text, min_chars=50).removed == 0
    assert leftovers(tmp_path) == []


@needs_shared
def test_gpt2_tokenizer_files_from_data_dir(monkeypatch):
    monkeypatch.setenv("GPTLAB_DATA_DIR", str(SHARED))
    encoder_json, vocab_bpe = corpora.gpt2_tokenizer_files()
    assert encoder_json == SHARED / "gpt2" / "encoder.json"
    assert vocab_bpe.stat().st_size == 456318
    assert data.available_offline("gpt2-tokenizer") == encoder_json


# ---------------------------------------------------------------- load_corpus

def test_local_file_and_folder(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_bytes("\ufeffHéllo\r\nworld\n".encode())
    assert data.load_corpus(f) == "Héllo\r\nworld\n"  # as stored, minus the byte-order mark
    assert data.load_corpus(str(f)) == data.load_corpus(f)

    folder = tmp_path / "corpus"
    (folder / "b").mkdir(parents=True)
    (folder / ".git").mkdir()
    (folder / "b" / "2.md").write_text("two\n")
    (folder / "a.txt").write_text("one\n\n\n")
    (folder / "c.TXT").write_text("three")
    (folder / "empty.txt").write_text("  \n")
    (folder / "code.py").write_text("ignored")
    (folder / ".hidden.txt").write_text("ignored")
    (folder / ".git" / "x.txt").write_text("ignored")
    expected = "one\n\ntwo\n\nthree\n"
    assert data.load_corpus(folder) == expected == data.load_corpus(folder)
    assert [p.name for p in data.corpus_files(folder)] == ["a.txt", "2.md", "c.TXT", "empty.txt"]
    assert data.load_documents(folder) == ["one\n\n\n", "two\n", "three"]


def test_stdlib_corpus_is_offline_and_deterministic():
    text = data.load_corpus("python-stdlib")
    assert text == data.load_corpus("python-stdlib") == data.stdlib_corpus()
    assert 200_000 < len(text) <= data.STDLIB_MAX_CHARS
    assert text.startswith("# ---- ") and "def " in text and "import " in text
    assert data.available_offline("python-stdlib") is not None
    assert "python-stdlib" in data.list_corpora() and "tinyshakespeare" in data.list_corpora()


def test_unknown_name_lists_known_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError) as err:
        data.load_corpus("shakespeare")
    msg = str(err.value)
    assert "'shakespeare'" in msg and "tinyshakespeare" in msg and "python-stdlib" in msg
    assert "path" in msg


def test_empty_corpus(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "blank.txt").write_text("\n \n")
    for p in (tmp_path / "empty.txt", tmp_path / "blank.txt"):
        with pytest.raises(ValueError, match="empty"):
            data.load_corpus(p)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "x.py").write_text("not text")
    with pytest.raises(ValueError, match="no non-empty"):
        data.load_corpus(tmp_path / "d")


def test_non_utf8_file_says_where_and_what_to_do(tmp_path):
    bad = tmp_path / "d" / "latin1.txt"
    bad.parent.mkdir()
    bad.write_bytes("ok\ncafé".encode("latin-1"))
    for target in (bad, bad.parent):
        with pytest.raises(ValueError) as err:
            data.load_corpus(target)
        msg = str(err.value)
        assert str(bad) in msg and "offset 6" in msg and "line 2" in msg
        assert "0xe9" in msg and "UTF-8" in msg and "iconv" in msg


def test_unreadable_file_says_what_to_do(tmp_path, monkeypatch):
    f = tmp_path / "secret.txt"
    f.write_text("text")

    def deny(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", deny)  # works even when the tests run as root
    with pytest.raises(PermissionError, match="chmod"):
        data.load_corpus(f)


# ---------------------------------------------------------------- cleaning and dedup

def test_clean_text():
    raw = "Cafe\u0301 \ufb01ne\r\nline two \t\rend\x00\x1b[0m\tok\x85\n"
    assert data.clean_text(raw) == "Café \ufb01ne\nline two\nend[0m\tok\n"
    assert data.clean_text(raw, "NFKC").startswith("Café fine\n")
    assert data.clean_text(raw, None, newlines=False, strip_trailing=False,
                           remove_control=False) == raw
    assert data.clean_text("a  \n b\t\n", remove_control=False) == "a\n b\n"
    with pytest.raises(ValueError, match="NFC"):
        data.clean_text("x", normalize="nfc")


def test_deduplicate_paragraphs_and_lines():
    text = "A\nx\n\nB\n\nA\nx\n\n\n\nC\n\nB\n"
    r = data.deduplicate(text)
    assert (r.text, r.kept, r.removed, r.unit) == ("A\nx\n\nB\n\n\n\nC\n", 3, 2, "paragraph")
    assert math.isclose(r.fraction_removed, 0.4)
    r = data.deduplicate("x\ny\n\nx\n\n\ny\nz\n", "line")
    assert (r.text, r.kept, r.removed) == ("x\ny\n\n\n\nz\n", 3, 2)  # blank lines all stay
    r = data.deduplicate("Ay.\n\nAy.\n\nA long repeated notice.\n\nA long repeated notice.\n",
                         min_chars=5)
    assert (r.text, r.removed) == ("Ay.\n\nAy.\n\nA long repeated notice.\n", 1)
    assert data.deduplicate("").text == "" and data.deduplicate("\n\n").text == "\n\n"
    with pytest.raises(ValueError, match="unit"):
        data.deduplicate("x", unit="word")  # type: ignore[arg-type]


paragraph_texts = st.lists(st.sampled_from(["a", "b", "a b", "c\nd", "", " "]), max_size=12).map(
    "\n".join)


@given(paragraph_texts, st.sampled_from(["paragraph", "line"]))
def test_deduplicate_properties(text, unit):
    r = data.deduplicate(text, unit)
    again = data.deduplicate(r.text, unit)
    assert again.removed == 0 and again.text == r.text  # idempotent
    assert r.kept == again.kept
    assert len(r.text) <= len(text)
    lines = [line for line in text.split("\n") if line.strip()]
    assert {line for line in r.text.split("\n") if line.strip()} == set(lines)


# ---------------------------------------------------------------- splitting and stats

@given(st.text(min_size=2, max_size=300), st.floats(0.01, 0.99))
def test_split_never_leaks(text, frac):
    try:
        train, val = data.train_val_split(text, frac)
    except ValueError:
        assert int(len(text) * (1 - frac)) in (0, len(text))  # only when a side would be empty
        return
    assert train + val == text and train and val
    ids = list(range(len(text)))  # the same split of positions: disjoint and complete
    tr, va = data.train_val_split(ids, frac)
    assert not set(tr) & set(va) and set(tr) | set(va) == set(ids) and max(tr) < min(va)


def test_split_validation_and_types():
    for bad in (0, 1, -0.1, 1.5, float("nan"), True):
        with pytest.raises(ValueError, match="val_fraction"):
            data.train_val_split("abcdefghij", bad)
    for short in ("", "a"):
        with pytest.raises(ValueError, match="too few"):
            data.train_val_split(short)
    train, val = data.train_val_split(np.arange(100))  # arrays and tensors slice the same way
    assert train.tolist() == list(range(90)) and val.tolist() == list(range(90, 100))


def test_split_documents():
    docs = [f"doc {i}" for i in range(10)]
    assert data.split_documents(docs, 0.2) == (docs[:8], docs[8:])
    train, val = data.split_documents(docs, 0.3, seed=1)
    assert (train, val) == data.split_documents(docs, 0.3, seed=1)
    assert sorted(train + val) == sorted(docs) and len(val) == 3 and val != docs[7:]
    with pytest.raises(ValueError, match="too few"):
        data.split_documents(["only one"])


def test_corpus_stats():
    s = data.corpus_stats("héllo world\nhello\n")
    assert (s.characters, s.bytes_utf8, s.lines, s.words) == (18, 19, 2, 3)
    assert s.unique_characters == 10 and s.most_common[0] == ("l", 5)
    assert data.corpus_stats("no newline").lines == 1 and data.corpus_stats("").lines == 0
    assert "18 characters" in str(s)
