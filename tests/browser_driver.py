"""Headless Chromium for the UI tests: tests/browser/ui_steps.cjs driven through playwright-core, one page per
Browser, a list of steps per call (see that file for the steps)."""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading

from a1111_host import REPO

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT_CORE = os.environ.get("PLAYWRIGHT_CORE") or os.path.join(REPO, ".ci", "node", "node_modules",
                                                                     "playwright-core")
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "browser", "ui_steps.cjs")
TOP_TABS = "#tabs > .tab-nav button"


def browser_missing() -> str | None:
    missing = [what for what, ok in (
        (f"chromium ({CHROMIUM})", os.access(CHROMIUM, os.X_OK)),
        ("node", shutil.which("node") is not None),
        (f"playwright-core ({os.environ.get('PLAYWRIGHT_CORE') or os.path.relpath(PLAYWRIGHT_CORE, REPO)})",
         os.path.isfile(os.path.join(PLAYWRIGHT_CORE, "package.json")))) if not ok]
    return ", ".join(missing) or None


class Browser:
    """One Chromium page in a node process: `run(*steps)` sends a list of steps and returns their results."""

    def __init__(self, shots: str):
        self.shots = shots
        env = {**os.environ, "PLAYWRIGHT_CORE": PLAYWRIGHT_CORE, "CHROMIUM": CHROMIUM}
        self.proc = subprocess.Popen(["node", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=env)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._answer(120) == {"ready": True}
        self.failures = 0

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _answer(self, timeout: float):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the browser did not answer in {timeout:.0f} s") from None
        if line is None:
            raise AssertionError(f"the browser driver exited with {self.proc.wait()}")
        return json.loads(line)

    def run(self, *steps: dict, timeout: float = 600) -> list:
        self.proc.stdin.write(json.dumps(steps) + "\n")
        self.proc.stdin.flush()
        answer = self._answer(timeout)
        if "error" in answer:
            self.failures += 1
            shot = os.path.join(self.shots, f"failure-{self.failures}.png")
            self.proc.stdin.write(json.dumps([{"do": "screenshot", "path": shot, "full": True}]) + "\n")
            self.proc.stdin.flush()
            self._answer(60)
            raise AssertionError(f"step {answer['step']} {steps[answer['step']]} failed: {answer['error']} "
                                 f"(screenshot: {shot})")
        return answer["results"]

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
