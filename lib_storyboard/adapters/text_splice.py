"""Token-vector splicing the way A1111 does it, for text encoders that are not the host's.

A1111 finds an embedding by its name's CLIP token-id sequence anywhere in the prompt, puts `n` placeholder slots
there and overwrites the input embeddings of those slots with the vectors. Doing exactly the same outside the host
means a model trained standalone behaves the same when its files are used in A1111, and vice versa.
"""
from __future__ import annotations

from dataclasses import dataclass

CHUNK = 75  # tokens between BOS and EOS


@dataclass
class Splice:
    row: int
    offset: int      # position in the 77-token sequence (BOS is 0)
    stem: str


def layout(tokenizer, captions: list[str], vector_counts: dict[str, int]) -> tuple[list[list[int]], list[Splice]]:
    """Token ids (B × 77) with placeholder slots, and where each stem's vectors go. Text past one chunk is cut."""
    name_ids = sorted(((tokenizer(stem, add_special_tokens=False).input_ids, stem) for stem in vector_counts),
                      key=lambda x: -len(x[0]))
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    rows, splices = [], []
    for r, text in enumerate(captions):
        ids = tokenizer(text, add_special_tokens=False).input_ids
        out: list[int] = []
        i = 0
        while i < len(ids) and len(out) < CHUNK:
            for seq, stem in name_ids:
                if ids[i:i + len(seq)] == seq:
                    n = vector_counts[stem]
                    if len(out) + n <= CHUNK:
                        splices.append(Splice(r, 1 + len(out), stem))
                        out.extend([0] * n)
                    i += len(seq)
                    break
            else:
                out.append(ids[i])
                i += 1
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
