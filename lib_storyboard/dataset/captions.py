"""Training captions: the shot trigger first, then the image's tags, shuffled and dropped out for robustness.

The trigger is never shuffled or dropped: it is what the run teaches. Tag shuffling and dropout keep the style
from binding to one tag order; caption dropout (all tags gone) teaches the trigger to carry the image on its own.
"""
from __future__ import annotations

import random
from collections.abc import Callable

from ..adapters.text_splice import CHUNK as MAX_TOKENS  # CLIP's 77 positions less the start and end tokens
from ..adapters.text_splice import token_count


def token_counter(tokenizer, vector_counts: dict[str, int] | None = None) -> Callable[[str], int]:
    """A `count_tokens` for build_caption from a transformers CLIP tokenizer: the positions a caption fills, start
    and end tokens not counted, each embedding name in `vector_counts` counted as its vectors' slots (as the host
    and the diffusers adapter lay it out). Within MAX_TOKENS, A1111 makes one chunk and diffusers cuts nothing."""
    return lambda text: token_count(tokenizer, text, vector_counts or {})


def build_caption(trigger: str, tags: list[str], *, shuffle: bool, rng: random.Random, keep_tags: int = 0,
                  tag_dropout: float = 0.0, caption_dropout: float = 0.0,
                  count_tokens: Callable[[str], int] | None = None, max_tokens: int = MAX_TOKENS) -> str:
    """`trigger, tag, tag, ...` for one training step.

    keep_tags: the first tags stay in place and are never dropped (e.g. a character name); the rest are shuffled
    when `shuffle`, each dropped with probability `tag_dropout`; with probability `caption_dropout` all tags go.
    With `count_tokens`, trailing tags are dropped until the caption fits in `max_tokens`.
    Random draws come only from `rng`, so a seeded rng gives the same caption again.
    """
    if not trigger:
        raise ValueError("A caption needs a trigger.")
    for name, p in (("tag_dropout", tag_dropout), ("caption_dropout", caption_dropout)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, not {p}.")
    if keep_tags < 0:
        raise ValueError(f"keep_tags must be 0 or more, not {keep_tags}.")
    if caption_dropout > 0 and rng.random() < caption_dropout:
        return trigger
    kept, rest = list(tags[:keep_tags]), list(tags[keep_tags:])
    if tag_dropout > 0:
        rest = [t for t in rest if rng.random() >= tag_dropout]
    if shuffle:
        rng.shuffle(rest)
    parts = [trigger] + kept + rest
    if count_tokens is not None and count_tokens(", ".join(parts)) > max_tokens:
        # Token counts grow with the number of tags: binary-search the longest prefix that fits (trigger always in).
        lo, hi = 1, len(parts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if count_tokens(", ".join(parts[:mid])) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        parts = parts[:lo]
    return ", ".join(parts)
