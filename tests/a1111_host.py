"""A real AUTOMATIC1111 v1.10.1 for the integration tests: copied to a temporary folder, the toy base exported as its
checkpoint, this extension installed from a git clone (install.py run the way the host's launcher runs it), started
on CPU on a free loopback port, and stopped again.

The host's source comes from `../shared/a1111` beside the checkout (a snapshot of tag v1.10.1 with its
`repositories/`), else from `$A1111_DIR`, else from a clone of the tag (users with internet). Without any of them
`source()` says why in one line and the tests skip.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TAG = "v1.10.1"
URL = "https://github.com/AUTOMATIC1111/stable-diffusion-webui.git"
# The commits launch_utils.py of v1.10.1 checks out into repositories/ (what `prepare_environment` would clone).
REPOSITORIES = {
    "stable-diffusion-webui-assets": ("https://github.com/AUTOMATIC1111/stable-diffusion-webui-assets.git",
                                      "6f7db241d2f8ba7457bac5ca9753331f0c266917"),
    "stable-diffusion-stability-ai": ("https://github.com/Stability-AI/stablediffusion.git",
                                      "cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf"),
    "generative-models": ("https://github.com/Stability-AI/generative-models.git",
                          "45c443b316737a4ab6e40413d7794a7f5657c19f"),
    "k-diffusion": ("https://github.com/crowsonkb/k-diffusion.git", "ab527a9a6d347f364e3d185ba6d714e22d80cb3c"),
    "BLIP": ("https://github.com/salesforce/BLIP.git", "48211a1594f1321b00f14c9f7a5b4813144b2fb9"),
}
BASE_FLAGS = ["--skip-prepare-environment", "--skip-torch-cuda-test", "--skip-version-check",
              "--no-download-sd-model", "--use-cpu", "all", "--no-half", "--precision", "full"]


def _is_webui(path: str | None) -> bool:
    return bool(path) and os.path.isfile(os.path.join(path, "launch.py")) and \
        os.path.isdir(os.path.join(path, "repositories", "stable-diffusion-stability-ai"))


def source(cache_dir: str) -> tuple[str | None, str]:
    """(the A1111 source folder, where it came from) or (None, why there is none, in one line)."""
    env = os.environ.get("A1111_DIR")
    if env:
        return (env, "A1111_DIR") if _is_webui(env) else (None, f"A1111_DIR={env} is not an A1111 folder with "
                                                                "repositories/")
    shared = os.path.join(os.path.dirname(REPO), "shared", "a1111")
    if _is_webui(shared):
        return shared, "../shared/a1111"
    dest = os.path.join(cache_dir, f"a1111-{TAG}")
    if _is_webui(dest):
        return dest, f"{dest} (a clone of {TAG})"
    # The tag's source (../shared/a1111 when present, else a clone) completed with the repositories its launcher
    # would clone: what users with internet get.
    tmp = f"{dest}.part-{os.getpid()}"    # one per process: test workers may build it at the same time
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        if os.path.isfile(os.path.join(shared, "launch.py")):
            copy_tree(shared, tmp)
        else:
            _git("clone", "-q", "--depth", "1", "-b", TAG, URL, tmp)
        for name, (url, commit) in REPOSITORIES.items():
            d = os.path.join(tmp, "repositories", name)
            if not os.path.isdir(d):
                _git("clone", "-q", url, d)
                _git("-C", d, "checkout", "-q", commit)
        try:
            os.replace(tmp, dest)
        except OSError:     # another worker finished first: its copy is as good
            if not _is_webui(dest):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
        return dest, f"{dest} (a clone of {TAG})"
    except (OSError, subprocess.SubprocessError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        have = "../shared/a1111 has no repositories/" if os.path.isdir(shared) else "../shared/a1111 is absent"
        return None, (f"no A1111 {TAG} to start: {have}, A1111_DIR is unset and cloning failed "
                      f"({type(e).__name__})")


def copy_tree(src: str, dst: str) -> None:
    """A copy whose folders are writable (the shared snapshot is read-only; the host writes beside its files)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".git", "__pycache__"))
    for root, _, _ in os.walk(dst):
        os.chmod(root, 0o755)


def webui_or_skip(tmp_path_factory, name: str) -> "WebUI":
    """A WebUI in a new temporary folder, or the test module skipped with one line when no A1111 source is found."""
    import pytest

    src, why = source(os.path.join(os.path.expanduser("~"), ".cache", "storyboard-tests"))
    if src is None:
        pytest.skip(why)
    return WebUI(str(tmp_path_factory.mktemp(name)), src)


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True, timeout=600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_environment(root: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update({"HF_HOME": os.path.join(root, "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": os.path.join(root, "yolo"),
                "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1",
                # One thread: the toy model's ops are tiny, and two threads on two shared cores spin at every barrier.
                "OMP_NUM_THREADS": "1",
                "STORYBOARD_CACHE": os.path.join(root, "cache")})
    env.pop("PYTHONPATH", None)
    return env


def clone_checkout(dest: str) -> None:
    """A git clone of this checkout with the files changed in its working tree laid over it, so that what is
    installed from it is the code under test."""
    _git("clone", "-q", "--no-hardlinks", REPO, dest)
    listed = subprocess.run(["git", "-C", REPO, "ls-files", "-co", "--exclude-standard"], check=True,
                            capture_output=True, text=True).stdout.splitlines()
    for rel in listed:
        src = os.path.join(REPO, rel)
        if os.path.isfile(src) and not rel.startswith(("docs/", ".ci/")):
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel))


def git_url_of_checkout(folder: str) -> str:
    """A `file://` URL of a bare repository in `folder` whose default branch is this checkout with its working
    tree's changes committed: what *Install from URL* can clone with no network. The repository is named like this
    one, so the host installs it into extensions/sd-webui-storyboard."""
    work = os.path.join(folder, "work")
    clone_checkout(work)
    ident = ["-c", "user.name=storyboard tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false"]
    _git("-C", work, "add", "-A")
    _git("-C", work, *ident, "commit", "-q", "--allow-empty", "-m", "The working tree under test")
    bare = os.path.join(folder, "sd-webui-storyboard.git")
    _git("clone", "-q", "--bare", "--no-hardlinks", work, bare)
    shutil.rmtree(work, ignore_errors=True)
    return "file://" + bare


def pip_freeze(python: str) -> str:
    return subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True,
                          check=True).stdout


class WebUI:
    """One A1111 folder; `start()` runs it, `stop()` ends it; the folder (models, config, outputs) stays."""

    def __init__(self, root: str, src: str):
        self.root, self.src = root, src
        self.dir = os.path.join(root, "webui")
        self.ext = os.path.join(self.dir, "extensions", "sd-webui-storyboard")
        self.env = host_environment(root)
        self.python = sys.executable
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.log_path = ""
        self.auth: str | None = None
        self.starts = 0

    # -- set-up ---------------------------------------------------------------------------------------------------
    def prepare(self, extension: bool = True) -> dict | None:
        """Copy the host, make its offline tokenizer cache, export the toy base, install the extension; returns
        what the installer printed and the package versions before and after it. `extension=False` leaves the
        extension out (None is returned): a host for installing it the way users do, through its Extensions tab."""
        copy_tree(self.src, self.dir)
        builder = os.path.join(self.dir, "build_hf_cache.py")
        if os.path.isfile(builder):
            subprocess.run([self.python, builder, self.env["HF_HOME"]], check=True, capture_output=True,
                           env=self.env)
        sys.path.insert(0, REPO)
        from lib_storyboard.models.a1111_export import export_checkpoint
        from lib_storyboard.models import toybase_path
        # Live previews would download the approximate-VAE model on the first generation; there is no network here.
        with open(os.path.join(self.dir, "config.json"), "w", encoding="utf-8") as f:
            json.dump({"live_previews_enable": False}, f)
        os.makedirs(os.path.join(self.dir, "models", "Stable-diffusion"), exist_ok=True)
        export_checkpoint(toybase_path(), os.path.join(self.dir, "models", "Stable-diffusion"))
        return self.install_extension() if extension else None

    def install_extension(self) -> dict:
        """As *Install from URL* does: a git clone into extensions/, then install.py as the launcher runs it.
        The clone is of this checkout; files changed in the working tree are laid over it so the tests see them."""
        clone_checkout(self.ext)
        before = pip_freeze(self.python)
        t0 = time.time()
        code = ("import launch\nfrom modules import launch_utils\n"
                f"launch_utils.run_extension_installer({self.ext!r})\n")
        res = subprocess.run([self.python, "-c", code], cwd=self.dir, env=self.env, capture_output=True, text=True,
                             timeout=900)
        return {"returncode": res.returncode, "output": res.stdout + res.stderr, "seconds": time.time() - t0,
                "before": before, "after": pip_freeze(self.python)}

    # -- running --------------------------------------------------------------------------------------------------
    def start(self, *flags: str, auth: str | None = None, timeout: float = 240, preexec_fn=None) -> None:
        """`preexec_fn` runs in the host's process before it starts (e.g. to set a resource limit)."""
        assert self.proc is None, "already running"
        port = free_port()
        self.url, self.auth = f"http://127.0.0.1:{port}", auth
        self.starts += 1
        self.log_path = os.path.join(self.root, f"webui-{self.starts}.log")
        log = open(self.log_path, "w")
        self.proc = subprocess.Popen([self.python, "launch.py", *BASE_FLAGS, "--port", str(port), *flags],
                                     cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=preexec_fn)
        log.close()
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"A1111 exited with {self.proc.returncode}:\n{self.log_tail()}")
            if "Startup time:" in self.log() and self._answers():
                return
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"A1111 was not up after {timeout:.0f} s:\n{self.log_tail()}")

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(self.url + "/", timeout=5).close()
            return True
        except urllib.error.HTTPError:
            return True     # up, just not serving "/" to us (auth)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is None:
            return
        with_suppress = (ProcessLookupError, PermissionError)
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except with_suppress:
            pass
        self.proc = None

    def log(self) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    # -- HTTP -----------------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body=None, auth: str | None | bool = True, timeout: float = 600,
             raw: bool = False):
        """(status, JSON body), or (status, bytes) with `raw`. `auth=True` sends the credentials the host was
        started with; a string sends those; False or None sends none."""
        headers = {"Content-Type": "application/json"}
        cred = self.auth if auth is True else (auth or None)
        if cred:
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        req = urllib.request.Request(self.url + path, method=method, headers=headers, data=data)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                return r.status, data if raw else json.loads(data) if data else None
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                return e.code, json.loads(data) if data else None
            except ValueError:
                return e.code, data.decode(errors="replace")

    def get(self, path: str, **kw):
        return self.call("GET", path, **kw)

    def post(self, path: str, body=None, **kw):
        return self.call("POST", path, {} if body is None else body, **kw)

    def wait_job(self, job_id: str, timeout: float = 600, until=("finished", "interrupted", "failed",
                                                                    "cancelled")) -> dict:
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, job = self.get(f"/storyboard/v1/jobs/{job_id}")
            assert st == 200, (st, job)
            if job["state"] in until:
                return job
            time.sleep(0.5)
        raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")
