"""Reading GPT-2's own tokenizer files (OpenAI's `encoder.json` and `vocab.bpe`).

GPT-2 writes every token as a printable string: each byte is shown as one visible character
(`bytes_to_unicode`), so the space byte 0x20 appears as "Ġ" and " the" as "Ġthe".

Its ids differ from a freshly trained gptlab tokenizer in one way only: the 256 byte tokens
come in GPT-2's order (printable bytes first, so "!" is id 0), not in byte-value order. The
merged tokens do follow merge order (merge `r` is id 256 + r), which `read_gpt2_files`
checks. So a BPETokenizer stores GPT-2's byte order explicitly (`byte_ids`) and everything
else works unchanged.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte value to a printable character.

    Bytes that are printable Latin-1 characters map to themselves; the other 68 (control
    bytes, space, ...) map to chr(256), chr(257), ... in byte order.
    """
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    table = {b: chr(b) for b in printable}
    n = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + n)
            n += 1
    return table


def read_gpt2_files(encoder_json_path: str | os.PathLike, vocab_bpe_path: str | os.PathLike
                    ) -> tuple[list[int], dict[tuple[int, int], int], dict[str, int]]:
    """Read GPT-2's tokenizer files.

    Returns:
        byte_ids: the token id of each byte value 0..255 (a permutation of 0..255).
        merges: `{(a, b): new_id}` in rank order, with new_id = 256 + rank.
        special_tokens: the remaining entries of encoder.json (`{"<|endoftext|>": 50256}`).
    """
    encoder_json_path, vocab_bpe_path = Path(encoder_json_path), Path(vocab_bpe_path)
    for path in (encoder_json_path, vocab_bpe_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"GPT-2 tokenizer file not found: {path}. Get encoder.json and vocab.bpe "
                "with gptlab.data (or set GPTLAB_DATA_DIR to a folder with gpt2/ in it)")
    try:
        encoder: dict[str, int] = json.loads(encoder_json_path.read_text(encoding="utf-8"))
        lines = vocab_bpe_path.read_text(encoding="utf-8").split("\n")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read GPT-2 files {encoder_json_path}, {vocab_bpe_path}: {e}; "
                         "download them again") from e
    if not isinstance(encoder, dict):  # a damaged file, not a wrong argument: ValueError
        raise ValueError(  # noqa: TRY004
            f"{encoder_json_path} must map token strings to ids; download it again")

    try:
        byte_ids = [encoder[bytes_to_unicode()[b]] for b in range(256)]
        if sorted(byte_ids) != list(range(256)):
            raise ValueError(f"{encoder_json_path}: the 256 byte tokens must have ids 0..255")
        merges: dict[tuple[int, int], int] = {}
        merge_lines = [line for line in lines if line and not line.startswith("#version")]
        for rank, line in enumerate(merge_lines):
            parts = line.split(" ")
            if len(parts) != 2:
                raise ValueError(f"{vocab_bpe_path}: line {line!r} is not a merge 'first second'")
            first, second = parts
            new = encoder[first + second]
            if new != 256 + rank:
                raise ValueError(f"{encoder_json_path}: token {first + second!r} has id {new}, "
                                 f"expected {256 + rank} (256 + its merge rank)")
            merges[(encoder[first], encoder[second])] = new
    except KeyError as e:
        raise ValueError(f"{vocab_bpe_path} uses token {e.args[0]!r}, which is not in "
                         f"{encoder_json_path}: the two files do not belong together") from None

    known = set(range(256 + len(merges)))
    special_tokens = {tok: i for tok, i in encoder.items() if i not in known}
    return byte_ids, merges, special_tokens

