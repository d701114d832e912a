"""The extra-networks card files beside a LoRA: `<stem>.json` (user metadata) and `<stem>.preview.png`.

A1111 and Forge read the json's "activation text" (added to the prompt with the card), "preferred weight" (the
`<lora:name:w>` multiplier; 0 means the host default), "negative text", "sd version" (an `SdVersion` name) and
"description"/"notes" (shown on the card and in its editor).
"""
from __future__ import annotations

import io
import json
import os

from .atomic import atomic_write_bytes, atomic_write_text


class SidecarError(ValueError):
    """Card data that cannot be written."""


def sidecar_paths(lora_path: str) -> tuple[str, str]:
    """(json path, preview path) for a LoRA file."""
    stem = os.path.splitext(lora_path)[0]
    return stem + ".json", stem + ".preview.png"


def _png_bytes(image) -> bytes:
    """PNG bytes of a PIL image, an HxWx3 uint8 array, or PNG bytes as given."""
    if isinstance(image, (bytes, bytearray)):
        if not bytes(image[:8]) == b"\x89PNG\r\n\x1a\n":
            raise SidecarError("The preview bytes are not a PNG image.")
        return bytes(image)
    from PIL import Image

    if not isinstance(image, Image.Image):
        try:
            image = Image.fromarray(image)
        except Exception as e:
            raise SidecarError(f"The preview must be a PIL image, an image array or PNG bytes ({e}).") from e
    if image.mode not in ("RGB", "RGBA", "L"):
        image = image.convert("RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def write_sidecar(lora_path: str, *, activation_text: str, preferred_weight: float = 1.0, negative_text: str = "",
                  description: str = "", notes: str = "", sd_version: str = "SD1", preview=None) -> list[str]:
    """Write the card json (and the preview png when given) beside `lora_path`, atomically; returns the paths."""
    w = float(preferred_weight)
    if not 0.0 <= w <= 2.0:
        raise SidecarError(f"The preferred weight must lie between 0 and 2, got {w}.")
    json_path, png_path = sidecar_paths(lora_path)
    data = {
        "description": str(description),
        "sd version": str(sd_version),
        "activation text": str(activation_text),
        "preferred weight": w,
        "negative text": str(negative_text),
        "notes": str(notes),
    }
    written = []
    if preview is not None:
        atomic_write_bytes(png_path, _png_bytes(preview))
        written.append(png_path)
    atomic_write_text(json_path, json.dumps(data, indent=4, ensure_ascii=False))
    written.insert(0, json_path)
    return written


def read_sidecar(lora_path: str) -> dict:
    """The card json beside `lora_path`, or {} when there is none or it is not valid json (as the hosts treat it)."""
    json_path, _ = sidecar_paths(lora_path)
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
