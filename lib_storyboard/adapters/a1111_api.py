"""HTTP routes under /storyboard/v1, added to the host's FastAPI app; they honour --api-auth like the host's own."""
from __future__ import annotations

from secrets import compare_digest

from fastapi import Body, Depends, FastAPI, HTTPException
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials

from ..training.adapter import UnsupportedModel
from ..training.config import ConfigError
from . import a1111_host as host


def _auth_dependency():
    from modules import shared

    creds = {}
    for pair in (shared.cmd_opts.api_auth or "").split(","):
        if ":" in pair:
            user, password = pair.split(":", 1)
            creds[user] = password
    if not creds:
        return lambda: True

    def check(credentials: HTTPBasicCredentials = Depends(HTTPBasic())):
        if credentials.username in creds and compare_digest(credentials.password, creds[credentials.username]):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})
    return check


def _error(status: int, errors: dict[str, str]) -> JSONResponse:
    return JSONResponse(status_code=status, content={
        "detail": [{"loc": ["body", k] if k else ["body"], "msg": v, "type": "value_error"} for k, v in errors.items()],
        "error": " ".join(errors.values())})


def check_model() -> None:
    from .a1111 import A1111Adapter
    A1111Adapter().check_trainable()


def add_routes(app: FastAPI) -> None:
    auth = _auth_dependency()
    deps = [Depends(auth)]

    @app.post("/storyboard/v1/train", dependencies=deps)
    def train(body=Body(...)):
        try:
            cfg = host.validate_request(body)
        except ConfigError as e:
            return _error(422, e.errors)
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
        return job.as_dict()

    @app.get("/storyboard/v1/jobs", dependencies=deps)
    def jobs():
        return {"jobs": [j.as_dict() for j in host.manager().list()]}

    @app.post("/storyboard/v1/jobs/{job_id}/cancel", dependencies=deps)
    def cancel(job_id: str):
        from modules import shared
        job = host.manager().get(job_id)
        if job is None:
            return _error(404, {"job_id": f"There is no storyboard job {job_id}."})
        was_running = job.state == "running"
        host.manager().cancel(job_id)
        if was_running:
            shared.state.interrupt()
        return job.as_dict()

    @app.get("/storyboard/v1/models", dependencies=deps)
    def models():
        return {"models": [m.as_dict() for m in host.list_models()]}
