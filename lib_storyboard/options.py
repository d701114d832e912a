"""One validation style for every options object (training, detailer pass, and the requests still to come): a
pydantic model whose fields declare, once, their constraints, their UI label and their UI range.

- `Options.from_dict(data)` validates JSON-like input and raises `OptionsError` with one sentence per bad field;
- `Options.schema()` (pydantic's) is what the API's `/schema` routes serve;
- `ui_spec(cls, key)` is what the UI builders read, so a slider's range is the field's own range.

Only pydantic's v1 API is used, which pydantic 2 still ships as `pydantic.v1`, so the same models run on the host's
pydantic 1.10 and on hosts with pydantic 2. Unknown keys are refused: a typo in an API call must not be ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

try:
    from pydantic.v1 import BaseModel, Extra, Field, ValidationError, validator
except ImportError:  # pydantic < 1.10.17 has no v1 namespace
    from pydantic import BaseModel, Extra, Field, ValidationError, validator  # type: ignore

__all__ = ["Options", "OptionsError", "option", "ui_spec", "UiSpec", "ValidationError", "validator", "Field"]


class OptionsError(ValueError):
    """Bad options; `errors` maps each field ("" for the whole object) to one sentence."""

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        super().__init__(" ".join(self.errors.values()))


def option(default: Any, label: str, help: str = "", *, ge: float | None = None, le: float | None = None,
           step: float | None = None, widget: str | None = None, lines: int = 1, **constraints) -> Any:
    """A field with its UI label (`title`), help text, bounds and UI step, declared together."""
    extra = {k: v for k, v in (("step", step), ("widget", widget)) if v is not None}
    if lines != 1:
        extra["lines"] = lines
    return Field(default, title=label, description=help or label, ge=ge, le=le, **extra, **constraints)


class Options(BaseModel):
    """Base of every options object. Subclasses name what they are in `_what` (used in sentences)."""

    _what = "option"    # not a field: pydantic 1 leaves names that start with "_" alone

    class Config:
        extra = Extra.forbid
        allow_mutation = False

    @validator("*", pre=True)
    def _no_silent_rounding(cls, v: Any, field) -> Any:
        # pydantic 1 would turn 3.7 into 3 and True into 1 without a word.
        kind = _base(field.type_)
        if kind is int and (isinstance(v, bool) or (isinstance(v, float) and not v.is_integer())):
            raise ValueError("must be a whole number")
        if kind is float and isinstance(v, bool):
            raise ValueError("must be a number")
        if kind is float and isinstance(v, (int, float, str)) and not _finite(v):
            raise ValueError("must be a finite number")   # JSON from Python may carry NaN and Infinity
        return v

    @classmethod
    def from_dict(cls, data: Any):
        if not isinstance(data, dict):
            raise OptionsError({"": f"Expected an object of {cls._what}s, got {type(data).__name__}."})
        try:
            return cls(**data)
        except ValidationError as e:
            raise OptionsError(sentences(cls, e, data)) from None

    def to_dict(self) -> dict:
        return self.dict()

    def non_defaults(self) -> dict:
        return {k: v for k, v in self.dict().items() if v != self.__fields__[k].default}


def sentences(cls, err: ValidationError, data: dict) -> dict[str, str]:
    """pydantic's errors → one sentence per field, naming it, its bounds or kind, and the value given."""
    out: dict[str, str] = {}
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if p != "__root__"]
        key = loc[0] if loc else ""
        if key in out:
            continue
        out[key] = _sentence(cls, key, e, data.get(key))
    return out


_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "text", dict: "an object",
          list: "a list", tuple: "a list"}


def _sentence(cls, key: str, e: dict, given: Any) -> str:
    kind, msg = e["type"], e["msg"]
    f = cls.__fields__.get(key)
    if kind == "value_error.extra":
        text = f"'{key}' is not a {cls._what}"
    elif f is None:   # a check across fields: its message is the sentence
        text = msg[:1].upper() + msg[1:]
    elif kind == "value_error.number.not_multiple":
        text = f"'{key}' must be a multiple of {_num(f.field_info.multiple_of)}"
    elif kind.startswith("value_error.number.not_"):
        lo, hi = f.field_info.ge, f.field_info.le
        text = (f"'{key}' must be between {_num(lo)} and {_num(hi)}" if lo is not None and hi is not None
                else f"'{key}' must be at least {_num(lo)}" if lo is not None else f"'{key}' must be at most {_num(hi)}")
    elif kind == "value_error.any_str.min_length":
        text = f"'{key}' must not be empty"
    elif _choices(f.outer_type_) and (kind.startswith("type_error") or "permitted" in msg):
        text = f"'{key}' must be one of {', '.join(map(repr, _choices(f.outer_type_)))}, not {given!r}"
    elif kind.startswith("type_error") or msg in ("must be a whole number", "must be a number"):
        text = f"'{key}' must be {_KINDS.get(_base(f.type_), 'valid')}, not {given!r}"
    else:
        text = msg if msg[:1].isupper() else f"'{key}' {msg}"
    return text if text.endswith(".") else text + "."


def _finite(v) -> bool:
    try:
        return math.isfinite(float(v))
    except (ValueError, OverflowError):
        return True   # not a number at all: the type check names it


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _base(tp) -> type | None:
    """The plain type behind a (constrained) field type: pydantic 1 makes `ge`/`le` fields subclasses."""
    for t in (bool, int, float, str, dict, list, tuple):
        if isinstance(tp, type) and issubclass(tp, t):
            return t
    return None


def _choices(tp) -> tuple:
    if get_origin(tp) is Literal:
        return get_args(tp)
    return ()


@dataclass(frozen=True)
class UiSpec:
    key: str
    label: str
    widget: str                  # checkbox | slider | number | dropdown | radio | textbox
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    choices: tuple = ()
    lines: int = 1


def ui_spec(cls, key: str) -> UiSpec:
    """How the UI shows field `key` of an options class: read from the field's own declaration."""
    f = cls.__fields__[key]
    info = f.field_info
    extra = info.extra
    choices = _choices(f.outer_type_)
    kind = _base(f.type_)
    if choices:
        widget = extra.get("widget", "radio" if len(choices) <= 3 else "dropdown")
    elif kind is bool:
        widget = "checkbox"
    elif kind in (int, float):
        widget = extra.get("widget", "slider" if info.ge is not None and info.le is not None else "number")
    else:
        widget = "textbox"
    step = extra.get("step", 1 if kind is int else None)
    return UiSpec(key, info.title or key, widget, info.description or "", info.ge, info.le, step, choices,
                  extra.get("lines", 1))
