"""Background jobs (training): one worker runs them in submission order; anyone can read their state or ask one to
stop. A job carries its validated options object, parsed once when the request came in.

The UI and the HTTP API share one job list, so a run started from either shows in both.
"""
from __future__ import annotations

import itertools
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable

ACTIVE = ("queued", "running")


@dataclass
class Job:
    id: str
    options: Any                   # the validated options object (has to_dict())
    kind: str = "train"            # train | board | dataset | validate
    state: str = "queued"          # queued | running | finished | interrupted | failed | cancelled
    step: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""
    files: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    report: dict = field(default_factory=dict)
    preview: str | None = None     # path of the latest preview grid
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def begin(self) -> None:
        """The run holds what it needs (the host's lock) and starts: only now can a cancel interrupt anything."""
        self.state, self.started, self.message = "running", time.time(), "Started."

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "step": self.step, "total": self.total, "loss": self.loss,
                "message": self.message, "files": list(self.files), "errors": list(self.errors),
                "report": self.report, "preview": self.preview, "config": self.options.to_dict(),
                "created": self.created, "started": self.started, "finished": self.finished}


class JobManager:
    def __init__(self, run: Callable[[Job], None], keep: int = 50, kind: str = "train"):
        self._run = run
        self.kind = kind
        self._jobs: dict[str, Job] = {}
        self._queue: list[Job] = []
        self._cv = threading.Condition()
        self._keep = keep
        self._worker: threading.Thread | None = None
        self._seq = itertools.count(1)

    def new_job(self, options) -> Job:
        job = Job(id=f"sb-{self.kind[0]}{next(self._seq)}-{uuid.uuid4().hex[:8]}", options=options, kind=self.kind)
        with self._cv:
            self._jobs[job.id] = job
            self._trim()
        return job

    def submit(self, options) -> Job:
        """Queue a job for the background worker."""
        job = self.new_job(options)
        with self._cv:
            self._queue.append(job)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=f"storyboard-{self.kind}", daemon=True)
                self._worker.start()
            self._cv.notify()
        return job

    def run_inline(self, job: Job, run: Callable[[Job], None] | None = None) -> Job:
        """Run a job in the caller's thread (the UI's click handler, which already holds the host's lock)."""
        self._execute(job, run)
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created)

    def active(self) -> Job | None:
        return next((j for j in self.list() if j.state == "running"), None)

    def pending(self) -> Job | None:
        """A job that is queued or running: one training at a time."""
        return next((j for j in self.list() if j.state in ACTIVE), None)

    def cancel(self, job_id: str) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        with self._cv:
            if job.state == "queued":
                job.state, job.finished, job.message = "cancelled", time.time(), "Cancelled before it started."
                if job in self._queue:
                    self._queue.remove(job)
        job.stop.set()
        return job

    def _loop(self):
        while True:
            with self._cv:
                while not self._queue:
                    if not self._cv.wait(timeout=60):
                        self._worker = None
                        return
                job = self._queue.pop(0)
            self._execute(job)

    def _execute(self, job: Job, run: Callable[[Job], None] | None = None):
        if job.state == "cancelled":
            return
        try:
            (run or self._run)(job)   # calls job.begin() once it may start
            if job.state == "running":
                job.state = "interrupted" if job.stop.is_set() else "finished"
            elif job.state == "queued":
                job.state, job.message = "cancelled", "Cancelled before it started."
        except Exception as e:  # the job records it; the worker keeps serving
            job.state = "failed"
            job.errors.append(str(e) or type(e).__name__)
            job.message = str(e)
            job.report.setdefault("traceback", traceback.format_exc(limit=8))
        finally:
            job.finished = time.time()

    def _trim(self):
        done = [j for j in self.list() if j.state not in ACTIVE]
        for j in done[:max(0, len(self._jobs) - self._keep)]:
            self._jobs.pop(j.id, None)


_registry: dict[str, JobManager] = {}
_registry_lock = threading.Lock()


def manager_for(kind: str, run: Callable[[Job], None]) -> JobManager:
    """The process's one job list of `kind` (train, board, dataset, validate), made on first use."""
    with _registry_lock:
        if kind not in _registry:
            _registry[kind] = JobManager(run, kind=kind)
        return _registry[kind]


def every_manager() -> list[JobManager]:
    """The job lists made so far, in the order they were made."""
    with _registry_lock:
        return list(_registry.values())
