"""The shot vocabulary: the three trigger tokens, their file stems, initial words and prompt handling.

Triggers are written `<cu_trg>` in prompts. A1111 matches embeddings by CLIP token-id sequence, and the stem
`cu_trg` matches inside `<cu_trg>`, `<cu_trg>,` and `<cu_trg>.` alike (a stem ending in `>` would not), so every
embedding is registered under the bare stem and the angle brackets stay as two ordinary tokens, in training and
at inference alike.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Shot:
    key: str            # "cu"
    stem: str           # "cu_trg": embedding name and file stem
    trigger: str        # "<cu_trg>": what users type
    label: str          # "close-up"
    init_words: str     # words whose embeddings initialise the vectors
    aliases: tuple      # tag spellings that name this shot in a dataset


SHOTS = (
    Shot("cu", "cu_trg", "<cu_trg>", "close-up", "close-up face portrait",
         ("close-up", "close up", "closeup", "cu", "close-up shot", "close up shot", "closeup shot",
          "extreme close-up", "face close-up")),
    Shot("ms", "ms_trg", "<ms_trg>", "medium shot", "medium shot upper body",
         ("medium shot", "medium", "ms", "mid shot", "midshot", "waist shot", "medium close-up", "cowboy shot")),
    Shot("fs", "fs_trg", "<fs_trg>", "full shot", "full body wide shot",
         ("full shot", "full", "fs", "long shot", "ls", "full body", "full body shot", "wide shot", "full-body")),
)
BY_KEY = {s.key: s for s in SHOTS}
BY_STEM = {s.stem: s for s in SHOTS}
BY_TRIGGER = {s.trigger: s for s in SHOTS}
STEMS = tuple(s.stem for s in SHOTS)
TRIGGERS = tuple(s.trigger for s in SHOTS)

_ALIAS = {}
for _s in SHOTS:
    for _a in _s.aliases + (_s.stem, _s.trigger, _s.key + "_trg"):
        _ALIAS[_a.lower()] = _s


def normalise_tag(tag: str) -> str:
    return re.sub(r"[\s_]+", " ", tag.strip().lower())


def shot_from_tag(tag: str) -> Shot | None:
    """The shot a single tag names, or None. Folder names go through this too ("close_up", "2_cu")."""
    t = normalise_tag(tag)
    if t in _ALIAS:
        return _ALIAS[t]
    if t.replace(" ", "_") in _ALIAS:          # "cu trg" from a folder named cu_trg
        return _ALIAS[t.replace(" ", "_")]
    m = re.fullmatch(r"\d+\s*(.+)", t)        # kohya-style "10_close-up" repeat prefixes
    if m:
        return shot_from_tag(m.group(1))
    return None


# A trigger in a prompt: `<cu_trg>` followed by whitespace, punctuation or the end of the text.
TRIGGER_RE = re.compile(r"<(cu|ms|fs)_trg>(?=[\s,.;:!?)\]]|$)", re.IGNORECASE)


def find_triggers(prompt: str) -> list[Shot]:
    """The shots whose triggers appear in `prompt`, in order of first appearance."""
    seen = []
    for m in TRIGGER_RE.finditer(prompt or ""):
        s = BY_KEY[m.group(1).lower()]
        if s not in seen:
            seen.append(s)
    return seen


def swap_trigger(prompt: str, to: Shot | None) -> str:
    """Replace every shot trigger in `prompt` with `to`'s trigger, or drop them when `to` is None.

    Used by the detailer: a face region is a close-up whatever the panel's shot was; a hand crop has no shot.
    """
    if to is None:
        out = TRIGGER_RE.sub("", prompt)
        out = re.sub(r"^[\s,]+", "", out)
        out = re.sub(r"\s*,\s*,", ",", out)
        return re.sub(r"\s{2,}", " ", out).strip()
    return TRIGGER_RE.sub(to.trigger, prompt)
