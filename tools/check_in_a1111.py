"""Checks sd-webui-storyboard through the HTTP API of a running A1111 (started with --api and this extension).

    python tools/check_in_a1111.py --url http://127.0.0.1:7860 --data <folder of tagged sketches> [--auth user:pass]

Trains a small model, follows its job, checks the files, the model list, the Lora and embedding lists, a txt2img
with `<cu_trg>` (infotext, pixels differ from the same prompt without the trigger) and the refusals. Prints what it
sees and exits non-zero on the first failed check. Keep images small: CPU hosts are slow.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
import urllib.error
import urllib.request


class Client:
    def __init__(self, url: str, auth: str | None):
        self.url = url.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if auth:
            self.headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()

    def call(self, method: str, path: str, body=None):
        req = urllib.request.Request(self.url + path, method=method, headers=self.headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=600) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def check(cond: bool, what: str) -> None:
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        sys.exit(1)


def image_hash(result) -> str:
    return hashlib.md5(base64.b64decode(result["images"][0])).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:7860")
    ap.add_argument("--data", required=True)
    ap.add_argument("--auth")
    ap.add_argument("--name", default="sbcheck")
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    c = Client(a.url, a.auth)

    st, body = c.call("POST", "/storyboard/v1/train", {"name": "bad name!", "data_dir": "/nonexistent",
                                                       "max_steps": "x", "rank": 0})
    fields = sorted(d["loc"][-1] for d in body.get("detail", []))
    check(st == 422 and fields == ["data_dir", "max_steps", "name", "rank"], f"422 names each bad field: {fields}")

    st, body = c.call("POST", "/storyboard/v1/train", {"name": a.name, "data_dir": a.data, "resolution": 64,
                                                       "max_steps": a.steps, "batch_size": 2})
    check(st == 200 and "job_id" in body, f"train accepted: {body}")
    job_id, seen_steps = body["job_id"], set()
    while True:
        time.sleep(2)
        _, job = c.call("GET", f"/storyboard/v1/jobs/{job_id}")
        seen_steps.add(job["step"])
        _, prog = c.call("GET", "/sdapi/v1/progress")
        if job["state"] == "running":
            print(f"     step {job['step']}/{job['total']} loss {job['loss']} | progress {prog['progress']:.2f} "
                  f"{prog['textinfo']}", flush=True)
        if job["state"] not in ("queued", "running"):
            break
    check(job["state"] == "finished" and job["step"] == a.steps, f"job finished: {job['state']} {job['errors']}")
    check(len(seen_steps) > 2, f"progress was visible while training ({len(seen_steps)} distinct steps seen)")
    check(any(f.endswith(f"{a.name}.safetensors") for f in job["files"]), "LoRA file written")

    _, models = c.call("GET", "/storyboard/v1/models")
    check(any(m["name"] == a.name for m in models["models"]), "model listed by /storyboard/v1/models")
    c.call("POST", "/sdapi/v1/refresh-loras")
    _, loras = c.call("GET", "/sdapi/v1/loras")
    check(any(lo["name"] == a.name for lo in loras), "LoRA listed by /sdapi/v1/loras")
    _, embs = c.call("GET", "/sdapi/v1/embeddings")
    shapes = {k: v["shape"] for k, v in embs["loaded"].items() if k.startswith(a.name + "-")}
    check(len(shapes) == 3 and len(set(shapes.values())) == 1, f"standalone embeddings loaded: {shapes}")

    gen = {"width": 64, "height": 64, "steps": 4, "sampler_name": "Euler", "seed": 5}
    _, with_trigger = c.call("POST", "/sdapi/v1/txt2img", {**gen, "prompt": "<cu_trg>, a girl in the rain",
                                                          "alwayson_scripts": {"storyboard triggers": {"args": [a.name]}}})
    info = json.loads(with_trigger["info"])["infotexts"][0]
    check(f"Storyboard model: {a.name}" in info and f"<lora:{a.name}:" in info, f"infotext: {info!r}")
    _, plain = c.call("POST", "/sdapi/v1/txt2img", {**gen, "prompt": "<cu_trg>, a girl in the rain",
                                                   "alwayson_scripts": {"storyboard triggers": {"args": ["none-such"]}}})
    check(image_hash(with_trigger) != image_hash(plain), "the trained model changes the pixels")
    _, _opts = c.call("POST", "/sdapi/v1/options", {"storyboard_apply_lora": False})
    _, tokens_only = c.call("POST", "/sdapi/v1/txt2img", {**gen, "prompt": "<cu_trg>, a girl in the rain",
                                                         "alwayson_scripts": {"storyboard triggers": {"args": [a.name]}}})
    c.call("POST", "/sdapi/v1/options", {"storyboard_apply_lora": True})
    info2 = json.loads(tokens_only["info"])["infotexts"][0]
    check("<lora:" not in info2 and image_hash(tokens_only) != image_hash(plain),
          "with the style LoRA off, the token vectors alone still change the pixels")
    print("all checks passed")


if __name__ == "__main__":
    main()
