"""Scanning a dataset folder: which images train which shot token, with which tags, and which files are skipped.

Layout: images (png/jpg/jpeg/webp/bmp, sub-folders allowed) with same-stem `.txt` files of comma-separated tags.
An image's shot comes from a tag naming it (`close-up`, `ms`, `<fs_trg>`...) or, failing that, from the nearest
sub-folder whose name names one (`close-up/`, `2_cu/`). Every image is opened once here, cheaply, so a corrupt
file is reported now instead of stopping training later.
"""
from __future__ import annotations

import dataclasses
import os
from collections import Counter
from dataclasses import dataclass, field

from ..shots import BY_KEY, SHOTS, Shot, shot_from_tag
from .images import BadImage, ImageInfo, probe_image

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
TAG_EXT = ".txt"
_SKIP_DIRS = ("__macosx",)  # resource forks from zip files made on macOS


class DatasetError(ValueError):
    """A dataset folder that cannot be used at all; the message is one sentence."""


@dataclass
class DataItem:
    path: str          # absolute
    rel_path: str      # relative to the root, "/"-separated
    shot_key: str      # "cu" | "ms" | "fs"
    tags: list[str]    # the image's tags without the shot tags (the trigger takes their place)
    width: int         # after EXIF orientation
    height: int
    mode: str = "RGB"  # the file's colour mode before conversion to RGB

    @property
    def shot(self) -> Shot:
        return BY_KEY[self.shot_key]


@dataclass
class Skipped:
    path: str
    rel_path: str
    reason: str        # a short phrase, e.g. "truncated or corrupt image data"


@dataclass
class DatasetScan:
    root: str
    items: list[DataItem]
    skipped: list[Skipped]
    unlabelled: list[str]                              # rel paths of readable images with no shot
    ignored: list[str] = field(default_factory=list)   # rel paths of other non-hidden files (not .txt)

    def counts_by_shot(self) -> dict[str, int]:
        """Usable images per shot key, every shot present (0 when none), in the shot vocabulary's order."""
        c = Counter(it.shot_key for it in self.items)
        return {s.key: c.get(s.key, 0) for s in SHOTS}

    def tag_frequency(self) -> dict[str, int]:
        """How many usable images carry each tag, most frequent first (ties by name)."""
        c = Counter(t for it in self.items for t in it.tags)
        return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))

    def report_lines(self) -> list[str]:
        counts = self.counts_by_shot()
        total = len(self.items) + len(self.skipped) + len(self.unlabelled)
        per_shot = ", ".join(f"{BY_KEY[k].label} {n}" for k, n in counts.items())
        lines = [f"Dataset {self.root}: {len(self.items)} of {total} images usable ({per_shot})."]
        for k, n in counts.items():
            if n == 0:
                s = BY_KEY[k]
                lines.append(f"No {s.label} images: {s.trigger} will learn nothing from this dataset.")
        modes = Counter(it.mode for it in self.items if it.mode != "RGB")
        if modes:
            lines.append("Converted to RGB on loading: " + ", ".join(f"{m} {n}" for m, n in sorted(modes.items()))
                         + " (transparency is composited on white).")
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)} file(s):")
            lines += [f"  {s.rel_path}: {s.reason}" for s in self.skipped]
        if self.unlabelled:
            lines.append(f"Skipped {len(self.unlabelled)} image(s) without a shot (add a tag such as close-up, "
                         "medium shot or full shot, or move them into a folder of that name):")
            lines += [f"  {p}" for p in self.unlabelled]
        if self.ignored:
            lines.append(f"Ignored {len(self.ignored)} file(s) that are not {'/'.join(e[1:] for e in IMAGE_EXTS)} "
                         f"images or .txt tag files: " + ", ".join(self.ignored))
        return lines

    def as_dict(self) -> dict:
        """JSON-able summary for the API and the tab."""
        return {
            "root": self.root,
            "counts": self.counts_by_shot(),
            "items": [dataclasses.asdict(it) for it in self.items],
            "skipped": [dataclasses.asdict(s) for s in self.skipped],
            "unlabelled": list(self.unlabelled),
            "ignored": list(self.ignored),
            "tag_frequency": self.tag_frequency(),
            "report": self.report_lines(),
        }

    def require_items(self) -> None:
        """Raise DatasetError when no image can be trained on (the trainer refuses an empty dataset); the sentence
        counts the reasons, e.g. "...: 3 truncated or corrupt image data." or "...; give each a shot tag..."."""
        if self.items:
            return
        text = (f"None of the {len(self.skipped) + len(self.unlabelled)} images in {self.root} can be used "
                f"({len(self.skipped)} skipped, {len(self.unlabelled)} without a shot)")
        if self.skipped:
            text += ": " + ", ".join(f"{n} {reason}" for reason, n in _reason_counts(self.skipped))
        if self.unlabelled:
            text += ("; give " + ("each" if not self.skipped else "those without a shot") + " a shot tag "
                     "(close-up, medium shot or full shot) or put it in a folder of that name")
        raise DatasetError(text + ".")


def _reason_counts(skipped: list[Skipped]) -> list[tuple[str, int]]:
    """(reason, count), most frequent first; reasons that differ only in their bracketed detail ("too small
    (16×16 pixels...)") are counted together under the shared part."""
    groups: dict[str, list[str]] = {}
    for s in skipped:
        groups.setdefault(s.reason.split(" (")[0], []).append(s.reason)
    out = [(reasons[0] if len(set(reasons)) == 1 else head, len(reasons)) for head, reasons in groups.items()]
    return sorted(out, key=lambda rc: -rc[1])


def parse_tags(text: str) -> list[str]:
    """Comma- or line-separated tags: stripped, inner whitespace collapsed, empties dropped, case-insensitive
    duplicates removed (first spelling kept)."""
    out, seen = [], set()
    for raw in text.replace("\r", "\n").replace("\n", ",").split(","):
        tag = " ".join(raw.split())
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            out.append(tag)
    return out


def split_shot_tags(tags: list[str]) -> tuple[list[Shot], list[str]]:
    """The distinct shots named by `tags` (in order) and the remaining, non-shot tags."""
    shots, rest = [], []
    for t in tags:
        s = shot_from_tag(t)
        if s is None:
            rest.append(t)
        elif s not in shots:
            shots.append(s)
    return shots, rest


def _folder_shot(rel_path: str) -> Shot | None:
    """The shot named by the nearest enclosing sub-folder (the root's own name does not count)."""
    for part in reversed(rel_path.split("/")[:-1]):
        s = shot_from_tag(part)
        if s is not None:
            return s
    return None


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in _SKIP_DIRS


def _walk(root: str, recursive: bool) -> tuple[list[str], dict[str, str], list[str]]:
    """(image rel paths, {lower-cased rel path of a .txt: its real rel path}, other files), all sorted."""
    images, txts, others = [], {}, []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _hidden(d)) if recursive else []
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        for name in filenames:
            if _hidden(name):
                continue
            ext = os.path.splitext(name)[1].lower()
            rel = rel_dir + name
            if ext in IMAGE_EXTS:
                images.append(rel)
            elif ext == TAG_EXT:
                txts[rel.lower()] = rel
            else:
                others.append(rel)
    return sorted(images), txts, sorted(others)


def _read_tags(root: str, rel_txt: str) -> list[str]:
    path = os.path.join(root, *rel_txt.split("/"))
    try:
        with open(path, "r", encoding="utf-8-sig") as f:  # -sig: Windows editors add a BOM
            return parse_tags(f.read())
    except UnicodeDecodeError:
        raise ValueError(f"its tag file {os.path.basename(path)} is not UTF-8 text") from None
    except OSError as e:
        raise ValueError(f"its tag file {os.path.basename(path)} is unreadable ({e.strerror or e})") from None


def scan_folder(folder: str, min_side: int = 64, recursive: bool = True, probe: bool = True) -> DatasetScan:
    """Scan `folder` into usable items, skipped files (with reasons) and images without a shot.

    Raises DatasetError when the folder does not exist, is not a folder or holds no images at all. With
    `probe=False` no image is opened (only names and tag files are read: a quick check of the labels before a run);
    items then have size 0×0 and mode "".
    """
    if not folder or not str(folder).strip():
        raise DatasetError("No dataset folder was given.")
    root = os.path.abspath(os.path.expanduser(str(folder)))
    if not os.path.exists(root):
        raise DatasetError(f"The dataset folder {root} does not exist.")
    if not os.path.isdir(root):
        raise DatasetError(f"The dataset path {root} is not a folder.")
    images, txts, others = _walk(root, recursive)
    if not images:
        raise DatasetError(f"The dataset folder {root} holds no images "
                           f"({', '.join(e[1:] for e in IMAGE_EXTS)}).")

    items, skipped, unlabelled = [], [], []
    for rel in images:
        path = os.path.join(root, *rel.split("/"))
        try:
            info = probe_image(path, min_side=min_side) if probe else ImageInfo(0, 0, "", "")
        except BadImage as e:
            skipped.append(Skipped(path, rel, e.reason))
            continue
        rel_txt = txts.get((os.path.splitext(rel)[0] + TAG_EXT).lower())
        try:
            tags = _read_tags(root, rel_txt) if rel_txt else []
        except ValueError as e:
            skipped.append(Skipped(path, rel, str(e)))
            continue
        shots, tags = split_shot_tags(tags)
        if len(shots) > 1:
            skipped.append(Skipped(path, rel, "conflicting shot tags (" + ", ".join(s.label for s in shots) + ")"))
            continue
        shot = shots[0] if shots else _folder_shot(rel)
        if shot is None:
            unlabelled.append(rel)
            continue
        items.append(DataItem(path, rel, shot.key, tags, info.width, info.height, info.mode))
    return DatasetScan(root, items, skipped, unlabelled, others)
