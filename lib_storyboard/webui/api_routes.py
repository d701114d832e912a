"""HTTP routes under /storyboard/v1, mounted as the host mounts its own API: only with --api (or the API-only --nowebui
mode), behind the same credentials; and the check that refuses bad detailer arguments in the host's txt2img/img2img.

These routes read folders on the server and write model files, so they are stricter than the host's: with no
--api-auth but a --gradio-auth, the WebUI's login guards them; with no credentials at all on a server reachable from
the network, training reads only folders inside the WebUI's folder. Answers never carry absolute server paths.
"""
import base64
import io
import json
import os
import re
from secrets import compare_digest

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from modules import paths_internal, shared

from ..detailer.args import json_schema
from ..jobs import Job, every_manager
from ..training.config import ConfigError, TrainConfig
from . import board_jobs, composition_hooks, controlnet_bridge, dataset_jobs, patches, settings
from .capabilities import api_credentials, api_enabled, network_exposed, training_unavailable, untrainable_checkpoint
from .detectors import catalog, detailer_request_error, yolo_folders
from .paths import inside_webui, list_models, lora_dir, public_path, storyboard_dir
from .train_jobs import manager, validate_request

PREFIX = "/storyboard/v1"


def on_app_started(app: FastAPI) -> None:
    """`script_callbacks.on_app_started`: the detailer check on the host's routes, then our routes."""
    if not api_enabled():
        return
    patches.add_route_check(app, "/sdapi/v1/txt2img", _generation_check(is_img2img=False))
    patches.add_route_check(app, "/sdapi/v1/img2img", _generation_check(is_img2img=True))
    deps = [Depends(_auth())]
    guarded = bool(api_credentials())
    _training_routes(app, deps, guarded)
    _board_routes(app, deps)
    _dataset_routes(app, deps, guarded)
    _detailer_routes(app, deps)
    _pose_routes(app, deps)


# -- access -------------------------------------------------------------------------------------------------------
def _auth():
    creds = api_credentials()
    if not creds:
        return lambda: True

    def check(given: HTTPBasicCredentials = Depends(HTTPBasic())):
        if given.username in creds and compare_digest(given.password, creds[given.username]):
            return True
        raise HTTPException(status_code=401, detail="Incorrect username or password",
                            headers={"WWW-Authenticate": "Basic"})
    return check


def _error(status: int, errors: dict[str, str], data_dir=None) -> JSONResponse:
    errors = {k: _scrub(v, data_dir) for k, v in errors.items()}
    return JSONResponse(status_code=status, content={
        "detail": [{"loc": ["body", k] if k else ["body"], "msg": v, "type": "value_error"} for k, v in errors.items()],
        "error": " ".join(errors.values())})


# -- what answers show ------------------------------------------------------------------------------------------
def _scrub(text: str, *folders) -> str:
    """`text` with the server folders it may name (the given ones, the WebUI's and this extension's) as
    `public_path` shows them: relative to the WebUI's folder, else only their names."""
    known = [*folders, lora_dir(), storyboard_dir(), getattr(shared.cmd_opts, "embeddings_dir", None)]
    full = {os.path.abspath(os.path.expanduser(f)) for f in known if isinstance(f, str) and f.strip()}
    for folder in sorted(full, key=len, reverse=True):   # the longest first: a folder inside another
        text = text.replace(folder, public_path(folder))
    return text.replace(os.path.abspath(paths_internal.data_path) + os.sep, "")


def public_job(job: Job) -> dict:
    d = job.as_dict()
    data_dir = d["config"].get("data_dir") or ""
    folders = (data_dir, d["config"].get("source") or "", d["config"].get("out") or "", board_jobs.boards_dir())
    d["message"] = _scrub(d["message"], *folders)
    d["errors"] = [_scrub(e, *folders) for e in d["errors"]]
    d["files"] = [public_path(f) for f in d["files"]]
    d["preview"] = public_path(d["preview"]) if d["preview"] else None
    if job.kind == "train":
        d["config"] = {**d["config"], "data_dir": public_path(data_dir)}
    elif job.kind == "dataset":
        d["config"] = {**d["config"], "source": public_path(d["config"]["source"]),
                       "out": public_path(d["config"]["out"])}
    elif d["config"].get("font_path"):
        d["config"] = {**d["config"], "font_path": public_path(d["config"]["font_path"])}
    d["report"] = public_report(d["report"])
    return d


def _managers():
    # Made here so that a job list nobody has used yet still answers (empty) for its kind.
    manager(), board_jobs.manager(), dataset_jobs.manager(), dataset_jobs.validation_manager()
    return every_manager()


def _find_job(job_id: str):
    return next((m for m in _managers() if m.get(job_id) is not None), None)


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


# -- JSON bodies --------------------------------------------------------------------------------------------------
def _json_post(app: FastAPI, path: str, deps: list, what: str, handler) -> None:
    """POST `path`: its JSON body (or a sentence saying why it is none) to `handler`, which reads folders and
    models, so it runs in the thread pool."""
    async def post(request: Request):
        body, refused = await _json_body(request, what)
        return refused if refused is not None else await run_in_threadpool(handler, body)
    app.add_api_route(path, post, methods=["POST"], dependencies=deps, name=handler.__name__.strip("_"))


async def _json_body(request: Request, what: str):
    """The request's JSON, or the 422 answer saying why it is not. The body is parsed here, not by FastAPI, so
    that a body that is not JSON gets a sentence too."""
    try:
        return json.loads(await request.body() or b"{}"), None
    except RecursionError:
        return None, _error(422, {"": f"The request body is nested too deeply; send a JSON object of {what}."})
    except ValueError:
        return None, _error(422, {"": f"The request body is not valid JSON; send a JSON object of {what}."})


# -- training -----------------------------------------------------------------------------------------------------
def _training_routes(app: FastAPI, deps: list, guarded: bool) -> None:
    @app.get(f"{PREFIX}/train/schema", dependencies=deps)
    def train_schema():
        return TrainConfig.schema()

    def _train(body):
        data_dir = body.get("data_dir") if isinstance(body, dict) else None
        # Before any check reads the folder: an open server must not tell strangers what other folders hold.
        if not guarded and network_exposed() and isinstance(data_dir, str) and data_dir.strip() and \
                not inside_webui(data_dir):
            return _error(403, {"data_dir": "This server is reachable from the network without --api-auth, so "
                                            "training reads only folders inside the WebUI's folder; move the "
                                            "dataset there or start the WebUI with --api-auth."})
        try:
            cfg = validate_request(body)
        except ConfigError as e:
            return _error(422, e.errors, data_dir)
        busy = manager().pending()
        if busy is not None:
            return _error(409, {"": f"Storyboard training job {busy.id} is {busy.state}; wait for it to end or "
                                    f"cancel it first."})
        reason = training_unavailable() or untrainable_checkpoint(shared.sd_model)
        if reason:
            return _error(409, {"": reason})
        job = manager().submit(cfg)
        return {"job_id": job.id, "state": job.state}
    _json_post(app, f"{PREFIX}/train", deps, "training options", _train)

    @app.get(f"{PREFIX}/jobs/{{job_id}}", dependencies=deps)
    def job_status(job_id: str):
        owner = _find_job(job_id)
        if owner is None:
            return _error(404, {"job_id": f"There is no storyboard job {job_id}."})
        return public_job(owner.get(job_id))

    @app.get(f"{PREFIX}/jobs", dependencies=deps)
    def jobs():
        every = sorted((j for m in _managers() for j in m.list()), key=lambda j: j.created)
        return {"jobs": [public_job(j) for j in every]}

    @app.post(f"{PREFIX}/jobs/{{job_id}}/cancel", dependencies=deps)
    def cancel(job_id: str):
        owner = _find_job(job_id)
        if owner is None:
            return _error(404, {"job_id": f"There is no storyboard job {job_id}."})
        job = owner.get(job_id)
        # Only a job that holds the host's lock is what the host is running; a waiting one is just withdrawn.
        running = job.state == "running"
        owner.cancel(job_id)
        if running:
            shared.state.interrupt()
        return public_job(job)

    @app.get(f"{PREFIX}/models", dependencies=deps)
    def models():
        return {"models": [{**m.as_dict(), "path": public_path(m.path)} for m in list_models()]}


# -- boards -------------------------------------------------------------------------------------------------------
BOARD_FILE = re.compile(r"(board\.(png|pdf|json)|panel-\d{3}\.png)")


def _board_routes(app: FastAPI, deps: list) -> None:
    @app.get(f"{PREFIX}/board/schema", dependencies=deps)
    def board_schema():
        schema = board_jobs.BoardOptions.schema()
        if not controlnet_bridge.available():   # composition needs sd-webui-controlnet
            for key in board_jobs.COMPOSITION_KEYS:
                schema["properties"].pop(key, None)
        schema["host_fields"] = [k for k in board_jobs.HOST_KEYS
                                 if k != "controlnet_model" or controlnet_bridge.available()]
        return schema

    def _board(body):
        try:
            req = board_jobs.validate_board_request(body)
        except board_jobs.BoardRequestError as e:
            return _error(422, e.errors)
        job = board_jobs.manager().submit(req)
        return {"job_id": job.id, "state": job.state, "warnings": req.warnings}
    _json_post(app, f"{PREFIX}/board", deps, "the scene list and board options", _board)

    @app.get(f"{PREFIX}/boards", dependencies=deps)
    def boards():
        return {"boards": board_jobs.list_boards(), "folder": public_path(board_jobs.boards_dir())}

    @app.get(f"{PREFIX}/boards/{{name}}", dependencies=deps)
    def board_json(name: str):
        try:
            folder = board_jobs.board_folder(name)
        except ValueError as e:
            return _error(404, {"board": str(e)})
        with open(os.path.join(folder, "board.json"), encoding="utf-8") as f:
            data = json.load(f)
        data["model"] = {k: v for k, v in data.get("model", {}).items() if not k.endswith("_path")}
        return {"name": name, **data}

    @app.get(f"{PREFIX}/boards/{{name}}/files/{{file}}", dependencies=deps)
    def board_file(name: str, file: str):
        try:
            folder = board_jobs.board_folder(name)
        except ValueError as e:
            return _error(404, {"board": str(e)})
        path = os.path.join(folder, file)
        if not BOARD_FILE.fullmatch(file) or not os.path.isfile(path):
            return _error(404, {"file": f"Board {name} has no file {file}."})
        return FileResponse(path)

    @app.post(f"{PREFIX}/boards/{{name}}/panels/{{panel}}/redraw", dependencies=deps)
    async def redraw(name: str, panel: int, request: Request):
        body, refused = await _json_body(request, "redraw options ({\"seed\": n} or {})")
        if refused:
            return refused
        if not isinstance(body, dict) or [k for k in body if k != "seed"]:
            return _error(422, {"": 'The body takes only "seed" (a whole number, or -1 or nothing for a random one).'})
        try:
            req = board_jobs.validate_redraw(name, panel, body.get("seed"))
        except board_jobs.BoardRequestError as e:
            return _error(404 if "board" in e.errors else 422, e.errors)
        job = board_jobs.manager().submit(req)
        return {"job_id": job.id, "state": job.state}


# -- dataset builds and validation -------------------------------------------------------------------------------
def _dataset_routes(app: FastAPI, deps: list, guarded: bool) -> None:
    @app.get(f"{PREFIX}/dataset/schema", dependencies=deps)
    def dataset_schema():
        schema = dataset_jobs.DatasetOptions.schema()
        schema["host_fields"] = {"interrogate": list(dataset_jobs.INTERROGATORS)}
        return schema

    @app.get(f"{PREFIX}/validate/schema", dependencies=deps)
    def validate_schema():
        schema = dataset_jobs.ValidationOptions.schema()
        schema["host_fields"] = list(dataset_jobs.VALIDATE_HOST_KEYS)
        return schema

    def _dataset(body):
        folders = [body.get(k) for k in ("source", "out")] if isinstance(body, dict) else []
        folders = [f for f in folders if isinstance(f, str) and f.strip()]
        # As for training: an open server reads and writes only inside the WebUI's folder, checked before any
        # answer could tell what another folder holds.
        outside = [k for k in ("source", "out") if isinstance(body, dict) and body.get(k) in folders and
                   not inside_webui(os.path.expanduser(body[k]))]
        if not guarded and network_exposed() and outside:
            return _error(403, {k: f"This server is reachable from the network without --api-auth, so dataset "
                                   f"builds use only folders inside the WebUI's folder; choose a {k} folder there "
                                   f"or start the WebUI with --api-auth." for k in outside})
        try:
            req = dataset_jobs.validate_dataset_request(body)
        except dataset_jobs.RequestError as e:
            return _error(422, {k: _scrub(v, *folders) for k, v in e.errors.items()})
        job = dataset_jobs.manager().submit(req)
        return {"job_id": job.id, "state": job.state}
    _json_post(app, f"{PREFIX}/dataset", deps, "dataset options", _dataset)

    def _validate(body):
        try:
            req = dataset_jobs.validate_validation_request(body)
        except dataset_jobs.RequestError as e:
            return _error(422, e.errors)
        job = dataset_jobs.validation_manager().submit(req)
        return {"job_id": job.id, "state": job.state}
    _json_post(app, f"{PREFIX}/validate", deps, "validation options", _validate)


# -- composition --------------------------------------------------------------------------------------------------
def _pose_routes(app: FastAPI, deps: list) -> None:
    def _pose(body):
        args, errors = composition_hooks.pose_request(body)
        if errors:
            return _error(422, errors)
        try:
            image = composition_hooks.make_pose(**args)
        except ValueError as e:    # the detector's weights are not here
            return _error(422, {"image": str(e)})
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return {"image": base64.b64encode(buf.getvalue()).decode(), "width": image.width, "height": image.height,
                "source": "reference" if args["reference"] is not None else "drawn"}
    _json_post(app, f"{PREFIX}/pose", deps, "pose options", _pose)


# -- the detailer -----------------------------------------------------------------------------------------------
def _detailer_routes(app: FastAPI, deps: list) -> None:
    @app.get(f"{PREFIX}/detailer/schema", dependencies=deps)
    def detailer_schema():
        return json_schema(settings.max_passes())

    @app.get(f"{PREFIX}/detailer/models", dependencies=deps)
    def detailer_models():
        found = catalog()
        return {"models": [{**m.to_dict(), "path": public_path(m.path) if m.path else None} for m in found.models()],
                "unavailable": {k: v for k, v in found.availability().items() if v},
                "folders": [public_path(f) for f in yolo_folders()], "downloads": found.yolo.allow_download}


def _generation_check(is_img2img: bool):
    """txt2img/img2img requests with bad detailer or composition arguments are refused in one sentence before the
    host starts (a script cannot refuse a generation once it runs)."""
    async def check_storyboard_args(request: Request):
        try:
            body = await request.json()
        except Exception:
            return  # not JSON: the host's own validation answers
        problem = detailer_request_error(body, is_img2img) or composition_hooks.request_error(body)
        if problem:
            raise HTTPException(status_code=422, detail=problem)
    return check_storyboard_args
