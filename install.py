"""Installs what sd-webui-storyboard needs into the WebUI's Python, never changing a package the host already has.

A1111 runs this file on every start (and once after *Install from URL*), so the common path — everything present —
only reads package metadata and returns in well under a second. When something is missing it runs pip with exact
pins and the running environment's own `pip freeze --all` as constraints, then checks that no package that was
already installed changed version.
"""
from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import tempfile

# (distribution, exact pin, what needs it). Versions are the newest that run beside A1111 1.10's own pins
# (torch 2.1.2, protobuf 3.20, numpy 1.26, httpx 0.24): newer mediapipe needs protobuf 4, newer ultralytics pulls
# httpx 0.28, newer opencv pulls numpy 2.
REQUIREMENTS = [
    ("mediapipe", "0.10.9", "the detailer's face detectors"),
    ("ultralytics", "8.4.118", "the detailer's YOLO detectors"),
    # 0.0.10 installs beside the host's pins adding only itself (its timm, scipy, opencv are already there).
    ("controlnet-aux", "0.0.10", "the dataset builder's annotator sketch styles (HED, line art, PiDiNet)"),
]
# Pulled in by the two above; pinned so pip cannot pick versions that need numpy 2.
COMPANIONS = ["opencv-python-headless==4.11.0.86", "opencv-contrib-python==4.11.0.86"]


def _installed() -> dict[str, str]:
    out = {}
    for d in md.distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name:
            out[name] = d.version
    return out


def _skip_install() -> bool:
    if os.environ.get("STORYBOARD_SKIP_INSTALL"):
        return True
    try:
        import launch  # the host's module; present when A1111 runs us
        return bool(getattr(launch.args, "skip_install", False))
    except Exception:
        return False


def missing() -> list[tuple[str, str, str]]:
    have = _installed()
    return [r for r in REQUIREMENTS if r[0] not in have]


def install(reqs) -> None:
    before = _installed()
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                            check=True).stdout
    # Exact pins of everything present: pip may add packages but can move none of the host's.
    pins = [ln for ln in freeze.splitlines() if "==" in ln and not ln.startswith("-e")]
    wanted = {n for n, _, _ in reqs}
    companions = [c for c in COMPANIONS if c.split("==")[0] not in before]
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(p for p in pins if p.split("==")[0].lower() not in wanted) + "\n")
        constraints = f.name
    try:
        cmd = [sys.executable, "-m", "pip", "install", "--prefer-binary", "-c", constraints]
        cmd += [f"{n}=={v}" for n, v, _ in reqs] + companions
        print(f"[storyboard] installing {', '.join(f'{n}=={v}' for n, v, _ in reqs)}", flush=True)
        res = subprocess.run(cmd, capture_output=True, text=True)
    finally:
        os.remove(constraints)
    if res.returncode != 0:
        tail = (res.stderr or res.stdout).strip().splitlines()[-3:]
        for n, _, why in reqs:
            print(f"[storyboard] {n} could not be installed, so {why} are off: {' / '.join(tail)}", flush=True)
        return
    after = _installed()
    moved = [f"{k} {v} -> {after.get(k)}" for k, v in before.items() if after.get(k) != v]
    if moved:  # cannot happen with the constraints above; say so loudly if it ever does
        print(f"[storyboard] WARNING: pip changed host packages: {', '.join(moved)}", flush=True)


def main() -> int:
    todo = missing()
    if not todo:
        return 0
    if _skip_install():
        for n, v, why in todo:
            print(f"[storyboard] {n}=={v} is missing and installs are skipped, so {why} are off.", flush=True)
        return 0
    install(todo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
