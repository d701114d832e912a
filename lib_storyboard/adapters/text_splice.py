"""Token-vector splicing the way A1111 does it, for text encoders that are not the host's.

A1111 finds an embedding by its name's CLIP token-id sequence anywhere in the prompt, puts `n` placeholder slots
there and overwrites the input embeddings of those slots with the vectors. Doing exactly the same outside the host
means a model trained standalone behaves the same when its files are used in A1111, and vice versa.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

CHUNK = 75  # tokens between BOS and EOS


@dataclass
class Splice:
    row: int
    offset: int      # position in the 77-token sequence (BOS is 0)
    stem: str


@lru_cache(maxsize=16)
def _names(tokenizer, stems: tuple) -> list[tuple[list[int], str]]:
    return sorted(((tokenizer(stem, add_special_tokens=False).input_ids, stem) for stem in stems),
                  key=lambda x: -len(x[0]))


def _expand(tokenizer, text: str, vector_counts: dict[str, int]):
    """The token ids of `text`, with each embedding name found in them (by id sequence, longest first, as the host
    matches) given as its stem instead."""
    names = _names(tokenizer, tuple(vector_counts))
    ids = tokenizer(text, add_special_tokens=False).input_ids
    i = 0
    while i < len(ids):
        for seq, stem in names:
            if ids[i:i + len(seq)] == seq:
                yield stem
                i += len(seq)
                break
        else:
            yield ids[i]
            i += 1


def token_count(tokenizer, text: str, vector_counts: dict[str, int]) -> int:
    """How many of the 75 positions `text` fills once each embedding name becomes its vectors' slots."""
    return sum(vector_counts[x] if isinstance(x, str) else 1 for x in _expand(tokenizer, text, vector_counts))


def layout(tokenizer, captions: list[str], vector_counts: dict[str, int]) -> tuple[list[list[int]], list[Splice]]:
    """Token ids (B × 77) with placeholder slots, and where each stem's vectors go. Text past one chunk is cut."""
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    rows, splices = [], []
    for r, text in enumerate(captions):
        out: list[int] = []
        for x in _expand(tokenizer, text, vector_counts):
            if len(out) >= CHUNK:
                break
            if isinstance(x, str):
                n = vector_counts[x]
                if len(out) + n <= CHUNK:
                    splices.append(Splice(r, 1 + len(out), x))
                    out.extend([0] * n)
            else:
                out.append(x)
        rows.append([bos] + out + [eos] * (CHUNK - len(out) + 1))
    return rows, splices


def apply_splices(embeds, splices: list[Splice], vectors: dict):
    """Return `embeds` (B, 77, D) with the spliced rows replaced; differentiable in the vectors."""
    if not splices:
        return embeds
    out = embeds.clone()
    for s in splices:
        v = vectors[s.stem].to(out.dtype)
        out[s.row, s.offset:s.offset + v.shape[0]] = v
    return out
