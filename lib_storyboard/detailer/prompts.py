"""The prompt of each region: the pass prompt's `[SEP]`/`[PROMPT]`/`[SKIP]` syntax, then the storyboard rules.

- `[SEP]` splits the pass prompt into one prompt per region, in region order; with fewer prompts than regions
  the last one repeats. An empty part means the main prompt, `[PROMPT]` inserts it, a part that is just `[SKIP]`
  leaves that region alone.
- Extra-network tags of the main prompt (`<lora:…>`, `<hypernet:…>`) are carried into every region prompt that
  lacks them: the host's inner img2img activates only the networks its own prompt names, so without them the
  style LoRA would be unloaded for the region.
- Shot-token swap (per pass, on by default): a face region is a close-up whatever the panel's shot was, so its
  trigger becomes `<cu_trg>`; a hand crop has no shot, so the trigger is dropped; person and other regions keep
  the panel's. A region prompt written without a trigger gets the main prompt's first one before the swap.
"""
from __future__ import annotations

import re

from .. import shots

SEP, PROMPT, SKIP = "[SEP]", "[PROMPT]", "[SKIP]"
# The host's extra-network syntax (A1111 `extra_networks.re_extra_net`).
EXTRA_NETWORK_RE = re.compile(r"<(\w+):([^>]+)>")


def split_parts(text: str) -> list[str]:
    return [p.strip() for p in (text or "").split(SEP)]


def _expand(part: str, main: str) -> str:
    return main if not part else part.replace(PROMPT, main)


def _carry_extra_networks(prompt: str, main: str) -> str:
    missing = [m.group(0) for m in EXTRA_NETWORK_RE.finditer(main) if m.group(0) not in prompt]
    return " ".join([prompt] + missing).strip() if missing else prompt


def apply_shot_swap(prompt: str, main: str, kind: str) -> str:
    """The region prompt's shot trigger for a region of `kind` ("face", "hand", "person", "other")."""
    main_shots = shots.find_triggers(main)
    if main_shots and not shots.find_triggers(prompt) and kind != "hand":
        prompt = f"{main_shots[0].trigger} {prompt}".strip()
    if kind == "face":
        return shots.swap_trigger(prompt, shots.BY_KEY["cu"])
    if kind == "hand":
        return shots.swap_trigger(prompt, None)
    return prompt


def region_prompts(pass_prompt: str, main_prompt: str, n: int, kind: str = "other",
                   shot_swap: bool = True) -> list[str | None]:
    """The prompt of each of `n` regions, or None for a region to skip."""
    parts = split_parts(pass_prompt)
    out: list[str | None] = []
    for i in range(n):
        part = parts[min(i, len(parts) - 1)]
        if part.upper() == SKIP:
            out.append(None)
            continue
        prompt = _carry_extra_networks(_expand(part, main_prompt), main_prompt)
        out.append(apply_shot_swap(prompt, main_prompt, kind) if shot_swap else prompt)
    return out


def region_negatives(pass_negative: str, main_negative: str, n: int) -> list[str]:
    """The negative prompt of each of `n` regions (`[SEP]` and `[PROMPT]` as for prompts; no skipping)."""
    parts = split_parts(pass_negative)
    return [_expand(parts[min(i, len(parts) - 1)], main_negative) for i in range(n)]
