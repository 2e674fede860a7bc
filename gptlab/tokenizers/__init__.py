"""Tokenizers: text <-> integer ids (lesson 02).

    from gptlab.tokenizers import CharTokenizer, BPETokenizer
    tok = BPETokenizer(pattern="gpt2").train(text, vocab_size=512)
    ids = tok.encode(text); tok.decode(ids)
    tok.save("tok.json"); BPETokenizer.load("tok.json")
    gpt2 = BPETokenizer.from_gpt2_files("encoder.json", "vocab.bpe")

Modules: `char` (CharTokenizer), `bpe` (BPETokenizer), `reference` (the plain, slow BPE of
the lesson: get_stats, merge, train_bpe_plain), `trainer` (fast training, same merges),
`gpt2` (reading GPT-2's files), `base` (shared interface and JSON files).
"""

from gptlab.tokenizers.base import Tokenizer, load_tokenizer
from gptlab.tokenizers.bpe import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    BPETokenizer,
    bpe_merge,
    clean_surrogates,
    render_token,
)
from gptlab.tokenizers.char import CharTokenizer
from gptlab.tokenizers.gpt2 import bytes_to_unicode
from gptlab.tokenizers.reference import get_stats, merge, train_bpe_plain
from gptlab.tokenizers.trainer import train_bpe

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "BPETokenizer",
    "CharTokenizer",
    "Tokenizer",
    "bpe_merge",
    "bytes_to_unicode",
    "clean_surrogates",
    "get_stats",
    "load_tokenizer",
    "merge",
    "render_token",
    "train_bpe",
    "train_bpe_plain",
]
