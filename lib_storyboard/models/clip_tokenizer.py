"""The real CLIP BPE tokenizer, written out in transformers' file layout from the BPE table open-clip ships.

No model hub is needed: open-clip-torch (which A1111 already has) carries `bpe_simple_vocab_16e6.txt.gz`, the same
merges SD1.5's tokenizer uses. The vocabulary is rebuilt the way CLIP builds it: 256 byte characters, the same with
`</w>`, one entry per merge, then the two special tokens (49,408 ids).
"""
from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache

N_MERGES = 49152 - 256 - 2  # 48894 merges, as in CLIP


def _bytes_to_unicode() -> dict:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def bpe_path() -> str:
    """Where open-clip's BPE file lies; a clear error if open-clip is missing."""
    try:
        import open_clip.tokenizer as oct
    except ImportError as e:  # pragma: no cover - the host always has open-clip
        raise RuntimeError("The CLIP tokenizer needs open-clip-torch installed (pip install open-clip-torch).") from e
    path = os.path.join(os.path.dirname(oct.__file__), "bpe_simple_vocab_16e6.txt.gz")
    if not os.path.isfile(path):
        raise RuntimeError(f"open-clip's BPE table is missing at {path}.")
    return path


def write_clip_tokenizer(out_dir: str) -> str:
    """Write vocab.json, merges.txt and the configs of the SD1.5 CLIP tokenizer into `out_dir`; returns it."""
    from ..formats.atomic import atomic_write_text

    os.makedirs(out_dir, exist_ok=True)
    with gzip.open(bpe_path(), "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = lines[1:N_MERGES + 1]
    byte_chars = list(_bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    atomic_write_text(os.path.join(out_dir, "vocab.json"),
                      json.dumps({tok: i for i, tok in enumerate(vocab)}, ensure_ascii=False))
    atomic_write_text(os.path.join(out_dir, "merges.txt"), "#version: 0.2\n" + "\n".join(merges) + "\n")
    special = {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}
    atomic_write_text(os.path.join(out_dir, "special_tokens_map.json"), json.dumps(special, indent=1))
    config = dict(special, tokenizer_class="CLIPTokenizer", model_max_length=77, do_lower_case=True,
                  add_prefix_space=False, errors="replace")
    atomic_write_text(os.path.join(out_dir, "tokenizer_config.json"), json.dumps(config, indent=1))
    return out_dir


def cache_dir() -> str:
    from ..cache import cache_root
    return os.path.join(cache_root(), "clip-tokenizer")


@lru_cache(maxsize=1)
def load_clip_tokenizer():
    """The slow CLIPTokenizer (the one A1111 uses), built once into the user cache."""
    from transformers import CLIPTokenizer

    d = cache_dir()
    if not os.path.isfile(os.path.join(d, "merges.txt")):
        write_clip_tokenizer(d)
    return CLIPTokenizer.from_pretrained(d)
