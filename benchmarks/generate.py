"""Generation speed: gptlab's KV cache against no cache, and against Hugging Face generate().

    python benchmarks/generate.py             # GPT-2 124M shape, 500 new tokens (many minutes)
    python benchmarks/generate.py --smoke     # seconds, on a tiny model (tests call this)

Both models are the same randomly initialised GPT-2 (124M shape, float32, batch 1): a
transformers GPT2LMHeadModel built from GPT2Config, saved to a temporary folder and imported
with GPT.from_hf_gpt2 (nothing is downloaded). Greedy decoding, the same prompt, exactly
--new-tokens new tokens (no end-of-text stop), KV cache on for both. Targets on a 2-core CPU:
cache >= 5x the tokens/s of no cache, gptlab >= 1.0x transformers, identical tokens.

gptlab and transformers run alternately, --repeat times each, best time kept; the uncached
reference (re-running the whole context every step) is slow and runs once. Torch threads
are set once for everything (--threads, default 1: decoding one token is memory-bound, and
on a shared machine a second thread mostly waits for a busy core). Wall times move with the
machine's load; the CPU times (this process, all threads) much less. Ends with one line
`RESULT key=value ...`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Running this file puts benchmarks/ first on sys.path, where benchmarks/tokenizers.py would
# shadow the HF `tokenizers` package that transformers imports: take that folder off the path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch

from gptlab.generate import generate
from gptlab.model import GPT


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall time, CPU time (this process, all threads) and result of one call."""
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - start, time.process_time() - start_cpu, out


def first_difference(a: torch.Tensor, b: torch.Tensor) -> int | None:
    """Index of the first differing token, None when equal."""
    if a.shape == b.shape and torch.equal(a, b):
        return None
    n = min(a.shape[-1], b.shape[-1])
    diff = (a[..., :n] != b[..., :n]).nonzero()
    return int(diff[0, -1]) if len(diff) else n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long check")
    parser.add_argument("--new-tokens", type=int, default=None, help="default 500 (smoke 24)")
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=None, help="timed runs each (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both")
    parser.add_argument("--no-uncached", action="store_true", help="skip the slow reference")
    args = parser.parse_args()
    smoke = args.smoke
    new = args.new_tokens or (24 if smoke else 500)
    repeat = args.repeat or (1 if smoke else 3)
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"python {platform.python_version()}, torch {torch.__version__}, {os.cpu_count()} "
          f"cpus, {args.threads} torch thread(s), load average {load:.1f}"
          f"{' (smoke)' if smoke else ''}")
    result: dict[str, Any] = {"load_avg": load, "threads": args.threads, "new_tokens": new}

    # The same weights for both: a random GPT-2 through transformers' own save format.
    try:
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        GPT2Config = GPT2LMHeadModel = None
        print("transformers not installed: the comparison with it is skipped")
    torch.manual_seed(0)
    size = ({"vocab_size": 512, "n_positions": 128, "n_embd": 64, "n_layer": 2, "n_head": 2,
             "bos_token_id": 0, "eos_token_id": 0} if smoke
            else {})  # {}: GPT-2 small, 124M
    with tempfile.TemporaryDirectory() as folder:
        if GPT2LMHeadModel is not None:
            hf = GPT2LMHeadModel(GPT2Config(**size)).eval()  # eval: no dropout
            hf.generation_config.eos_token_id = None  # generate exactly `new` tokens
            hf.generation_config.pad_token_id = 0
            hf.save_pretrained(folder)
            model = GPT.from_hf_gpt2(folder).eval()
        else:
            from gptlab.model import GPTConfig
            cfg = GPTConfig(vocab_size=512, block_size=128, n_layer=2, n_head=2, n_embd=64)
            model = GPT(cfg if smoke else GPTConfig.preset("gpt2")).eval()
    cfg = model.config
    print(f"model: {model.num_params() / 1e6:.1f}M parameters (L={cfg.n_layer}, "
          f"C={cfg.n_embd}, V={cfg.vocab_size}); prompt {args.prompt_tokens} tokens, "
          f"{new} new tokens, greedy, batch 1, float32")
    prompt = torch.randint(0, cfg.vocab_size, (1, args.prompt_tokens),
                           generator=torch.Generator().manual_seed(1))

    def ours(n: int = new) -> torch.Tensor:
        return generate(model, prompt, n, temperature=0)

    def theirs(n: int = new) -> torch.Tensor:
        with torch.no_grad():
            return hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                               max_new_tokens=n, use_cache=True)

    runners: dict[str, Callable[..., torch.Tensor]] = {"gptlab": ours}
    if GPT2LMHeadModel is not None:
        runners["hf"] = theirs
    for fn in runners.values():  # warm-up: first-call allocations, kernel choices
        fn(8)
    best: dict[str, tuple[float, float]] = {k: (float("inf"), float("inf")) for k in runners}
    tokens: dict[str, torch.Tensor] = {}
    for r in range(repeat):  # alternate, so that both see the same kind of load
        for name, fn in runners.items():
            wall, cpu, tokens[name] = timed(fn)
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            print(f"  run {r + 1}/{repeat} {name:7s} {new / wall:7.2f} tokens/s "
                  f"(wall {wall:.1f} s, cpu {cpu:.1f} s)", flush=True)
    result["cached_tok_s"] = new / best["gptlab"][0]
    result["cached_cpu_s"] = best["gptlab"][1]
    if "hf" in runners:
        result["hf_tok_s"] = new / best["hf"][0]
        result["hf_cpu_s"] = best["hf"][1]
        result["vs_hf"] = result["cached_tok_s"] / result["hf_tok_s"]
        result["vs_hf_cpu"] = best["hf"][1] / best["gptlab"][1]
        where = first_difference(tokens["gptlab"], tokens["hf"])
        result["hf_identical"] = where is None
        print(f"gptlab / transformers: {result['vs_hf']:.2f}x tokens/s (cpu "
              f"{result['vs_hf_cpu']:.2f}x); tokens identical: {where is None}"
              + ("" if where is None else f" (first difference at position {where})"))

    if not args.no_uncached:
        print("uncached reference (re-runs the whole context every step)...", flush=True)
        wall, cpu, ref = timed(lambda: generate(model, prompt, new, temperature=0,
                                                use_cache=False))
        result["uncached_tok_s"] = new / wall
        result["uncached_cpu_s"] = cpu
        result["cache_speedup"] = result["cached_tok_s"] / result["uncached_tok_s"]
        result["cache_speedup_cpu"] = cpu / result["cached_cpu_s"]
        where = first_difference(tokens["gptlab"], ref)
        result["cache_identical"] = where is None
        print(f"  uncached {new / wall:.2f} tokens/s (wall {wall:.1f} s, cpu {cpu:.1f} s); "
              f"cache speed-up {result['cache_speedup']:.1f}x (cpu "
              f"{result['cache_speedup_cpu']:.1f}x); tokens identical: {where is None}"
              + ("" if where is None else f" (first difference at position {where})"))
    result["load_avg_end"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print("RESULT " + " ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
