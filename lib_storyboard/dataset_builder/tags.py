"""Tag clean-up for the dataset's `.txt` files: the shot tag first, then the user's prefix, then whatever an
interrogator (the WebUI's DeepBooru or CLIP) said, normalised so the trainer sees one spelling per idea.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from ..shots import BY_KEY, shot_from_tag


def split_tags(text: str | Iterable[str] | None) -> list[str]:
    """A comma- or line-separated string (or a list of such strings) as raw tags."""
    if not text:
        return []
    parts = [text] if isinstance(text, str) else list(text)
    return [t for p in parts for t in re.split(r"[,\n\r]+", p)]


def normalise(tag: str) -> str:
    """lower-case, `_` → space (DeepBooru writes `long_hair`), inner whitespace collapsed, stray commas and
    spaces stripped."""
    return " ".join(tag.replace("_", " ").lower().split()).strip(" ,")


def clean_tags(tags: Iterable[str], blacklist: Iterable[str] = (), drop_shot_tags: bool = True) -> list[str]:
    """Normalised, de-duplicated (first kept), without blacklisted tags and, by default, without tags that name a
    shot: the builder writes the shot it measured, and a second, different one would make the image conflicting."""
    banned = {normalise(b) for b in blacklist if normalise(b)}
    out, seen = [], set()
    for raw in tags:
        tag = normalise(raw)
        if not tag or tag in seen or tag in banned:
            continue
        if drop_shot_tags and shot_from_tag(tag) is not None:
            continue
        seen.add(tag)
        out.append(tag)
    return out


def caption_tags(shot_key: str, prefix: Iterable[str] = (), extra: Iterable[str] = (),
                 blacklist: Iterable[str] = ()) -> list[str]:
    """The tags of one dataset image: its shot's name, the user's prefix tags, then the interrogated ones."""
    return [BY_KEY[shot_key].label] + clean_tags(list(prefix) + list(extra), blacklist)
