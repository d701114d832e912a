"""A scene list: CSV, JSON or plain `shot | description | dialogue [| seed] [| pose]` lines → validated scenes.

Every bad row is reported (one sentence each, naming its line, row or scene number) before anything is drawn, so
a user fixes the whole list in one go instead of one error per run.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import asdict, dataclass, field

from .. import shots
from ..composition.poses import POSES

MAX_SCENES = 100            # a board, not a film: more panels than this is almost surely a wrong file
MAX_TEXT = 2000             # characters in one description, dialogue or negative
SEED_MAX = 2**32 - 1
NO_SHOT = {"", "-", "—", "none", "no shot"}
FIELDS = ("shot", "description", "dialogue", "seed", "negative", "pose")
SHOT_HELP = "use cu, ms, fs (or close-up, medium shot, full shot), or none or - for no shot"
NO_POSE = "none"            # a scene's pose "none": this panel gets no pose even on a composed board
POSE_NAMES = tuple(POSES) + (NO_POSE,)
POSE_HELP = f"use {', '.join(POSES)}, or {NO_POSE} for no pose"
_WHOLE = re.compile(r"[+-]?\d+")   # a lines cell that reads as a seed (its range is checked with the other seeds)


class SceneError(ValueError):
    """A bad scene list; `errors` holds one sentence per problem, in file order."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)
        super().__init__(" ".join(self.errors))


@dataclass(frozen=True)
class Scene:
    number: int                 # 1-based position on the board
    shot: str | None            # "cu" | "ms" | "fs", or None for inserts and establishing shots
    description: str
    dialogue: str = ""
    seed: int | None = None     # this scene's own seed, which wins over the board's seed policy
    negative: str = ""
    pose: str = ""              # "" the board's composition, "none" no pose, else one of composition.POSES

    def as_dict(self) -> dict:
        d = asdict(self)
        del d["number"]
        if not self.pose:       # scene lists and board.json files without poses stay as they were
            del d["pose"]
        return d


@dataclass(frozen=True)
class SceneList:
    scenes: tuple[Scene, ...]
    shared: dict = field(default_factory=dict)   # "prefix" / "negative" given in a JSON list's header object

    def as_dict(self) -> dict:
        return {**self.shared, "scenes": [s.as_dict() for s in self.scenes]}


def read_scenes(path: str) -> SceneList:
    """The scene list in the file at `path`; the format comes from its extension (.csv, .json, else lines)."""
    if not os.path.isfile(path):
        raise SceneError([f"The scene list {path} does not exist."])
    try:
        with open(path, encoding="utf-8-sig") as f:   # -sig: spreadsheets save CSV with a byte-order mark
            text = f.read()
    except UnicodeDecodeError:
        raise SceneError([f"The scene list {os.path.basename(path)} is not UTF-8 text."]) from None
    ext = os.path.splitext(path)[1].lower()
    return parse_scenes(text, {".csv": "csv", ".json": "json"}.get(ext, "lines"))


def parse_scenes(text: str, fmt: str = "lines") -> SceneList:
    """Parse `text` as "csv", "json" or "lines"; raises SceneError with every problem found."""
    parse = {"csv": _parse_csv, "json": _parse_json, "lines": _parse_lines}.get(fmt)
    if parse is None:
        raise ValueError(f"Unknown scene list format {fmt!r}: use csv, json or lines.")
    errors: list[str] = []
    rows, shared = parse(text, errors)       # rows: (where, {field: raw value} or the sentence saying what is wrong)
    scenes = []
    for where, raw in rows:
        if isinstance(raw, str):
            errors.append(raw)
            continue
        scene = _scene(len(scenes) + 1, where, raw, errors)
        if scene is not None:
            scenes.append(scene)
    if not rows and not errors:
        errors.append("The scene list has no scenes.")
    if len(rows) > MAX_SCENES:
        errors.append(f"The scene list has {len(rows)} scenes; a board takes at most {MAX_SCENES}.")
    if errors:
        raise SceneError(errors)
    return SceneList(tuple(scenes), shared)


def guess_format(text: str) -> str:
    """The format of pasted text: JSON when it opens with [ or {, CSV when its first line is a header naming the
    shot and description columns, else lines."""
    body = text.lstrip("\ufeff \t\r\n")
    if body[:1] in "[{" and body:
        return "json"
    first = body.splitlines()[0].lower() if body else ""
    if "|" not in first and {"shot", "description"} <= {c.strip().strip('"') for c in first.split(",")}:
        return "csv"
    return "lines"


def editable_text(scene_list: SceneList) -> tuple[str, str]:
    """The scene list as text to edit and its format: lines when every scene fits them (no negative, no shared
    header), else JSON."""
    if scene_list.shared or any(s.negative or "|" in s.description + s.dialogue or "\n" in s.description + s.dialogue
                                for s in scene_list.scenes):
        return json.dumps(scene_list.as_dict(), ensure_ascii=False, indent=1), "json"
    rows = []
    for s in scene_list.scenes:
        cells = [s.shot or "-", s.description, s.dialogue] + ([str(s.seed)] if s.seed is not None else []) + \
            ([s.pose] if s.pose else [])
        rows.append(" | ".join(cells).rstrip())
    return "\n".join(rows) + "\n", "lines"


def shot_key(value: str) -> str | None:
    """"cu" / "ms" / "fs" for any spelling the shot vocabulary knows, None for no shot; ValueError otherwise."""
    v = shots.normalise_tag(value)
    if v in NO_SHOT:
        return None
    s = shots.shot_from_tag(v)
    if s is None:
        raise ValueError(value)
    return s.key


def _scene(number: int, where: str, raw: dict, errors: list[str]) -> Scene | None:
    bad = len(errors)
    values = {}
    for key in ("shot", "description", "dialogue", "negative", "pose"):
        v = raw.get(key)
        if v is None:
            v = ""
        if not isinstance(v, str):
            errors.append(f"{where}: '{key}' must be text, not {v!r}.")
            continue
        values[key] = v.strip()
        if len(values[key]) > MAX_TEXT:
            errors.append(f"{where}: the {key} is longer than {MAX_TEXT} characters.")
    shot, shot_ok = None, True
    try:
        shot = shot_key(values.get("shot", ""))
    except ValueError:
        shot_ok = False
        errors.append(f"{where}: unknown shot {values['shot']!r}; {SHOT_HELP}.")
    if "description" in values and not values["description"]:
        errors.append(f"{where}: the description is empty.")
    seed = _seed(raw.get("seed"), where, errors)
    pose = values.get("pose", "").lower()
    if pose and pose not in POSE_NAMES:
        errors.append(f"{where}: unknown pose {values['pose']!r}; {POSE_HELP}.")
    elif pose and pose != NO_POSE and shot is None and shot_ok:
        # the pose image is framed as the panel's shot, so a panel without one has nothing to frame it by
        errors.append(f"{where}: the pose {pose!r} needs a shot (cu, ms or fs) to frame it; give the scene a "
                      f"shot or leave its pose empty.")
    if len(errors) > bad:
        return None
    return Scene(number, shot, values["description"], values["dialogue"], seed, values["negative"], pose)


def _seed(v, where: str, errors: list[str]) -> int | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        errors.append(f"{where}: the seed must be a whole number, not {v!r}.")
        return None
    try:
        n = int(v.strip()) if isinstance(v, str) else v
    except ValueError:
        errors.append(f"{where}: the seed {v.strip()!r} is not a whole number.")
        return None
    if not 0 <= n <= SEED_MAX:
        errors.append(f"{where}: the seed {n} is outside 0 to {SEED_MAX}.")
        return None
    return n


def _parse_lines(text: str, errors: list[str]):
    rows = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) > 5:
            rows.append((f"Line {i}", f"Line {i}: {len(parts)} columns, but a line takes at most 5 "
                         "(shot | description | dialogue | seed | pose); a '|' inside the dialogue splits it."))
        elif len(parts) < 2:
            rows.append((f"Line {i}", f"Line {i}: expected shot | description | dialogue, got no '|'."))
        else:
            rows.append((f"Line {i}", _line_cells(i, parts)))
    return rows, {}


def _line_cells(i: int, parts: list[str]) -> dict | str:
    """A line's cells by field, or the sentence saying what is wrong. After the dialogue come a seed and a pose, in
    either order, so a line can give a pose without a seed; a whole number is the seed, a pose name the pose."""
    raw = dict(zip(("shot", "description", "dialogue"), parts))
    for cell in parts[3:]:
        if not cell:
            continue
        key = "seed" if _WHOLE.fullmatch(cell) else "pose" if cell.lower() in POSE_NAMES else None
        if key is None:
            return (f"Line {i}: {cell!r} after the dialogue is neither a seed (a whole number) nor a pose "
                    f"({', '.join(POSE_NAMES)}).")
        if key in raw:
            return f"Line {i}: two {key}s ({raw[key]!r} and {cell!r}); a line takes at most one seed and one pose."
        raw[key] = cell
    return raw


def _parse_csv(text: str, errors: list[str]):
    reader = csv.reader(io.StringIO(text))
    try:
        table = [r for r in reader]
    except csv.Error as e:
        errors.append(f"The CSV could not be read ({e}).")
        return [], {}
    table = [r for r in table if any(c.strip() for c in r)]
    if not table:
        return [], {}
    header = [c.strip().lower() for c in table[0]]
    missing = [k for k in ("shot", "description", "dialogue") if k not in header]
    unknown = [c for c in header if c not in FIELDS]
    if missing or unknown:
        what = (f"lacks {', '.join(missing)}" if missing else "") + ("; " if missing and unknown else "") + \
               (f"has unknown columns {', '.join(map(repr, unknown))}" if unknown else "")
        errors.append(f"The CSV's header row must name the columns shot, description, dialogue (and optionally seed, "
                      f"negative, pose), but it {what}.")
        return [], {}
    rows = []
    for n, r in enumerate(table[1:], 2):
        if len(r) > len(header):
            rows.append((f"Row {n}", f"Row {n}: {len(r)} columns, but the header names {len(header)}; quote text "
                         "that holds a comma."))
        else:
            rows.append((f"Row {n}", dict(zip(header, r))))
    return rows, {}


def _parse_json(text: str, errors: list[str]):
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        errors.append(f"The scene list is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}).")
        return [], {}
    shared = {}
    if isinstance(data, dict):
        unknown = [k for k in data if k not in ("prefix", "negative", "scenes")]
        if unknown:
            errors.append(f"The scene list object takes prefix, negative and scenes, not {', '.join(map(repr, unknown))}.")
        for k in ("prefix", "negative"):
            if k in data:
                if isinstance(data[k], str):
                    shared[k] = data[k].strip()
                else:
                    errors.append(f"The scene list's '{k}' must be text, not {data[k]!r}.")
        if not isinstance(data.get("scenes"), list):
            errors.append("The scene list object needs 'scenes', a list of scene objects.")
            return [], shared
        data = data["scenes"]
    if not isinstance(data, list):
        errors.append(f"The scene list must be a JSON list of scenes or an object with 'scenes', "
                      f"not {_json_kind(data)}.")
        return [], shared
    rows = []
    for n, item in enumerate(data, 1):
        where = f"Scene {n}"
        if not isinstance(item, dict):
            rows.append((where, f"{where} must be an object with shot, description and dialogue, "
                                f"not {_json_kind(item)}."))
            continue
        unknown = [k for k in item if k not in FIELDS]
        rows.append((where, f"{where}: {', '.join(map(repr, unknown))} is not a scene field (use {', '.join(FIELDS)})."
                     if unknown else item))
    return rows, shared


def _json_kind(v) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true or false", type(None): "null"}.get(
        type(v), "a number")
