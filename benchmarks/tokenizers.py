"""Tokenizer speed: gptlab's BPE against the plain reference, HF `tokenizers` and tiktoken.

    python benchmarks/tokenizers.py           # full run on tinyshakespeare (about a minute)
    python benchmarks/tokenizers.py --smoke   # seconds, on a small slice (tests call this)

Finds tinyshakespeare.txt and gpt2/{encoder.json,vocab.bpe} in $GPTLAB_DATA_DIR (else through
gptlab.data). Targets on a 2-core CPU, GPT-2 pattern, one process: train to 512 in <= 2 s, to
4096 in <= 10 s, encode the corpus in <= 1 s (also with GPT-2's 50,257 tokens). Timings are
the best of `--repeat` runs; encode times are with a fresh tokenizer (empty chunk cache).
Ends with one line `RESULT key=value ...`.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Running this file puts benchmarks/ first on sys.path, where this very file would shadow the
# HF `tokenizers` package: take that folder off the path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from gptlab.tokenizers import GPT2_SPLIT_PATTERN, BPETokenizer, train_bpe_plain
from gptlab.tokenizers.reference import split_chunks


def best_time(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """Smallest wall time and smallest CPU time (this process, all threads) of `repeat` calls,
    and the last result. CPU time barely moves when other programs load the machine."""
    wall, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu, result


def data_dir() -> Path | None:
    folder = os.environ.get("GPTLAB_DATA_DIR")
    return Path(folder) if folder else None


def load_text(smoke: bool) -> str:
    folder = data_dir()
    if folder and (folder / "tinyshakespeare.txt").is_file():
        return (folder / "tinyshakespeare.txt").read_text(encoding="utf-8")
    try:
        from gptlab.data import load_corpus
        return load_corpus("tinyshakespeare")
    except (ImportError, OSError, ValueError) as e:  # offline without the file
        if not smoke:
            raise
        print(f"tinyshakespeare not found ({type(e).__name__}); smoke run on this script's text")
        return Path(__file__).read_text(encoding="utf-8") * 5


def gpt2_files() -> tuple[Path, Path] | None:
    folder = data_dir()
    if folder and (folder / "gpt2" / "encoder.json").is_file():
        return folder / "gpt2" / "encoder.json", folder / "gpt2" / "vocab.bpe"
    try:
        from gptlab.data import gpt2_tokenizer_files
        return gpt2_tokenizer_files()
    except (ImportError, OSError, ValueError) as e:
        print(f"GPT-2 files not found ({type(e).__name__}): GPT-2 lines skipped")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check")
    parser.add_argument("--repeat", type=int, default=None, help="runs per timing (best kept)")
    args = parser.parse_args()
    smoke = args.smoke
    repeat = args.repeat or (1 if smoke else 3)
    result: dict[str, Any] = {}

    text = load_text(smoke)
    if smoke:
        text = text[:30_000]
    slice_chars, slice_vocab = (5_000, 300) if smoke else (50_000, 512)
    big_vocabs = (300, 400) if smoke else (512, 4096)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} cpus, load average {load:.1f}; corpus {len(text):,} chars"
          f"{' (smoke)' if smoke else ''}")
    result["load_avg"] = load

    def measure(key: str, label: str, fn: Callable[[], Any], times: int = repeat) -> Any:
        """Time `fn`, print a line, store `key_s` and `key_cpu_s` in the RESULT figures."""
        wall, cpu, out = best_time(fn, times)
        print(f"{label}: {wall:.3f} s (cpu {cpu:.3f} s)")
        result[f"{key}_s"], result[f"{key}_cpu_s"] = wall, cpu
        return out

    # 1. Plain (recount every pair after every merge) vs gptlab, on the same slice.
    piece = text[:slice_chars]
    what = f"{slice_chars:,} chars to vocab {slice_vocab}"
    plain = measure("plain_slice", f"plain trainer, {what}",
                    lambda: train_bpe_plain(piece, slice_vocab, GPT2_SPLIT_PATTERN), 1)
    fast = measure("slice", f"gptlab trainer, {what}",
                   lambda: BPETokenizer("gpt2").train(piece, slice_vocab, progress=False).merges)
    result["slice_speedup"] = result["plain_slice_s"] / result["slice_s"]
    result["merges_identical"] = plain == fast
    print(f"speed-up {result['slice_speedup']:.0f}x; merges identical: {plain == fast}")
    if plain != fast:
        sys.exit("ERROR: gptlab's merges differ from the plain trainer's")

    # 2. Train gptlab on the whole corpus (the pre-split and counting timed on their own too).
    measure("presplit", "pre-split + count chunks",
            lambda: collections.Counter(split_chunks(text, GPT2_SPLIT_PATTERN)))
    trained = {v: measure(f"train{v}", f"gptlab train to {v}",
                          lambda v=v: BPETokenizer("gpt2").train(text, v, progress=False))
               for v in big_vocabs}

    # 3. Encode the whole corpus with an empty chunk cache (the honest, first-call figure).
    def encode_fresh(tok: BPETokenizer) -> list[int]:
        tok._cache.clear()
        return tok.encode(text)

    for vocab, tok in trained.items():
        ids = measure(f"encode{vocab}", f"gptlab encode, vocab {vocab}",
                      lambda t=tok: encode_fresh(t))
        assert tok.decode(ids) == text
    files = gpt2_files()
    gpt2_ids = None
    if files:
        gpt2 = measure("gpt2_load", "gptlab GPT-2: read the files",
                       lambda: BPETokenizer.from_gpt2_files(*files), 1)
        gpt2_ids = measure("gpt2_encode", "gptlab GPT-2 encode", lambda: encode_fresh(gpt2))

    # 4. References measured in the same run.
    try:
        from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    except ImportError:
        print("HF tokenizers not installed: reference lines skipped")
    else:
        def hf_train(vocab: int) -> Any:
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            trainer = trainers.BpeTrainer(vocab_size=vocab, show_progress=False,
                                          initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
            tok.train_from_iterator([text], trainer=trainer)
            return tok

        for vocab in big_vocabs:
            hf = measure(f"hf_train{vocab}", f"HF tokenizers train to {vocab}",
                         lambda v=vocab: hf_train(v))
        measure("hf_encode", f"HF tokenizers encode, vocab {big_vocabs[-1]}",
                lambda: hf.encode(text).ids)
    try:
        import tiktoken
        from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    except ImportError:
        print("tiktoken not installed: reference line skipped")
    else:
        if files:
            ranks = data_gym_to_mergeable_bpe_ranks(str(files[1]), str(files[0]))
            enc = tiktoken.Encoding(name="gpt2-offline", pat_str=GPT2_SPLIT_PATTERN,
                                    mergeable_ranks=ranks,
                                    special_tokens={"<|endoftext|>": 50256})
            ids = measure("tiktoken_gpt2_encode", "tiktoken GPT-2 encode",
                          lambda: enc.encode_ordinary(text))
            result["gpt2_ids_identical"] = ids == gpt2_ids
            print(f"gptlab's GPT-2 ids identical to tiktoken's: {ids == gpt2_ids}")

    # 5. Ratios (> 1: gptlab is slower by that factor).
    small, large = big_vocabs
    if f"hf_train{small}_s" in result:
        result["train_vs_hf"] = result[f"train{small}_s"] / result[f"hf_train{small}_s"]
        result["encode_vs_hf"] = result[f"encode{large}_s"] / result["hf_encode_s"]
    if "tiktoken_gpt2_encode_s" in result:
        result["gpt2_encode_vs_tiktoken"] = (result["gpt2_encode_s"]
                                             / result["tiktoken_gpt2_encode_s"])
    print("RESULT " + " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
