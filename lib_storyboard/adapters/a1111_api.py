"""HTTP routes under /storyboard/v1, mounted as the host mounts its own API: only with --api (or the API-only
--nowebui mode), behind the same --api-auth credentials.

These routes read folders on the server and write model files, so they are stricter than the host's: with no
--api-auth but a --gradio-auth, the WebUI's login guards them; with no credentials at all on a server reachable from
the network (--listen, --share, --ngrok, --server-name), training reads only folders inside the WebUI's folder.
Answers never carry absolute server paths: files are named relative to the WebUI's data folder.
"""
from __future__ import annotations

import ipaddress
import json
import os
from secrets import compare_digest

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from ..training.adapter import UnsupportedModel
from ..training.config import ConfigError
from . import a1111_host as host


def api_enabled() -> bool:
    """The host creates its API with --api, and always in its API-only mode (--nowebui)."""
    from modules import shared
    return bool(getattr(shared.cmd_opts, "api", False) or getattr(shared.cmd_opts, "nowebui", False))


def credentials() -> dict[str, str]:
    from modules import initialize_util, shared

    pairs = [p.split(":", 1) for p in (shared.cmd_opts.api_auth or "").split(",") if ":" in p]
    if not pairs:
        pairs = [list(c) for c in initialize_util.get_gradio_auth_creds() if len(c) == 2]
    return {user.strip(): password for user, password in pairs}


def network_exposed() -> bool:
    from modules import shared

    o = shared.cmd_opts
    if getattr(o, "listen", False) or getattr(o, "share", False) or getattr(o, "ngrok", None):
        return True
    name = getattr(o, "server_name", None)
    if not name or name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True


def _auth_dependency():
    creds = credentials()
    if not creds:
        return lambda: True

    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())):
        if given.username in creds and compare_digest(given.password, creds[given.username]):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})
    return check


def public_path(path: str) -> str:
    """A server path as an API answer shows it: relative to the WebUI's data folder, else only its name."""
    from modules import paths_internal

    root = os.path.abspath(paths_internal.data_path)
    full = os.path.abspath(path)
    if os.path.commonpath([root, full]) == root:
        return os.path.relpath(full, root).replace(os.sep, "/")
    return os.path.basename(full)


def _scrub(text: str, *folders) -> str:
    """`text` with the server folders it may name (the given ones, the WebUI's and this extension's) as
    `public_path` shows them: relative to the WebUI's folder, else only their names."""
    from modules import paths_internal, shared

    known = [*folders, host.lora_dir(), host.storyboard_dir(), getattr(shared.cmd_opts, "embeddings_dir", None)]
    full = {os.path.abspath(os.path.expanduser(f)) for f in known if isinstance(f, str) and f.strip()}
    for folder in sorted(full, key=len, reverse=True):   # the longest first: a folder inside another
        text = text.replace(folder, public_path(folder))
    return text.replace(os.path.abspath(paths_internal.data_path) + os.sep, "")


def public_job(job) -> dict:
    d = job.as_dict()
    data_dir = d["config"].get("data_dir") or ""
    d["message"] = _scrub(d["message"], data_dir)
    d["errors"] = [_scrub(e, data_dir) for e in d["errors"]]
    d["files"] = [public_path(f) for f in d["files"]]
    d["preview"] = public_path(d["preview"]) if d["preview"] else None
    d["config"] = {**d["config"], "data_dir": public_path(d["config"].get("data_dir") or "")}
    d["report"] = public_report(d["report"])
    return d


def public_report(report: dict) -> dict:
    """A dataset report without server paths: entries keep their path relative to the dataset folder."""
    root = report.get("root") or ""
    out = {k: v for k, v in report.items() if k not in ("root", "traceback")}
    for key in ("items", "skipped"):
        if isinstance(out.get(key), list):
            out[key] = [{k: v for k, v in e.items() if k != "path" or "rel_path" not in e} if isinstance(e, dict)
                        else e for e in out[key]]
    if root and isinstance(out.get("report"), list):
        out["report"] = [line.replace(root, public_path(root)) for line in out["report"]]
    return out


def _error(status: int, errors: dict[str, str], data_dir=None) -> JSONResponse:
    errors = {k: _scrub(v, data_dir) for k, v in errors.items()}
    return JSONResponse(status_code=status, content={
        "detail": [{"loc": ["body", k] if k else ["body"], "msg": v, "type": "value_error"} for k, v in errors.items()],
        "error": " ".join(errors.values())})


def check_model() -> None:
    from .a1111 import A1111Adapter
    A1111Adapter().check_trainable()


def _outside_webui(folder: str) -> bool:
    from modules import paths_internal

    root = os.path.realpath(paths_internal.data_path)
    return os.path.commonpath([root, os.path.realpath(folder)]) != root


def add_routes(app: FastAPI) -> None:
    if not api_enabled():
        return
    deps = [Depends(_auth_dependency())]
    guarded = bool(credentials())

    @app.post("/storyboard/v1/train", dependencies=deps)
    async def train(request: Request):
        # The body is parsed here, not by FastAPI, so that a body that is not JSON gets a sentence too.
        try:
            body = json.loads(await request.body())
        except RecursionError:
            return _error(422, {"": "The request body is nested too deeply; send a JSON object of training options."})
        except ValueError:
            return _error(422, {"": "The request body is not valid JSON; send a JSON object of training options."})
        return await run_in_threadpool(_train, body)

    def _train(body):
        data_dir = body.get("data_dir") if isinstance(body, dict) else None
        # Before any check reads the folder: an open server must not tell strangers what other folders hold.
        if not guarded and network_exposed() and isinstance(data_dir, str) and data_dir.strip() and \
                _outside_webui(data_dir):
            return _error(403, {"data_dir": "This server is reachable from the network without --api-auth, so "
                                            "training reads only folders inside the WebUI's folder; move the "
                                            "dataset there or start the WebUI with --api-auth."})
        try:
            cfg = host.validate_request(body)
        except ConfigError as e:
            return _error(422, e.errors, data_dir)
        busy = host.manager().pending()
        if busy is not None:
            return _error(409, {"": f"Storyboard training job {busy.id} is {busy.state}; wait for it to end or "
                                    f"cancel it first."})
        try:
            check_model()
        except UnsupportedModel as e:
            return _error(409, {"": str(e)})
        job = host.manager().submit(cfg.to_dict())
        return {"job_id": job.id, "state": job.state}

    @app.get("/storyboard/v1/jobs/{job_id}", dependencies=deps)
    def job_status(job_id: str):
        job = host.manager().get(job_id)
        if job is None:
            return _error(404, {"job_id": f"There is no storyboard job {job_id}."})
        return public_job(job)

    @app.get("/storyboard/v1/jobs", dependencies=deps)
    def jobs():
        return {"jobs": [public_job(j) for j in host.manager().list()]}

    @app.post("/storyboard/v1/jobs/{job_id}/cancel", dependencies=deps)
    def cancel(job_id: str):
        from modules import shared
        job = host.manager().get(job_id)
        if job is None:
            return _error(404, {"job_id": f"There is no storyboard job {job_id}."})
        # Only a job that holds the host's lock is what the host is running; a waiting one is just withdrawn.
        running = job.state == "running"
        host.manager().cancel(job_id)
        if running:
            shared.state.interrupt()
        return public_job(job)

    @app.get("/storyboard/v1/models", dependencies=deps)
    def models():
        out = []
        for m in host.list_models():
            d = m.as_dict()
            d.update({k: public_path(v) for k, v in d.items() if k in ("path", "file", "json", "preview") and
                      isinstance(v, str) and v})
            out.append(d)
        return {"models": out}
