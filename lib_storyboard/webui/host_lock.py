"""Running a job as the host runs a generation: holding its queue lock (so nothing swaps or patches the model
mid-run) and its progress state (so the progress bar, Interrupt and Skip work on it)."""
import time

from modules import call_queue, shared

from ..jobs import Job


def run_locked(job: Job, take_lock: bool, state_name: str, work) -> None:
    """Run `work()` for `job`. The UI's handlers run inside the host's wrap_gradio_gpu_call, which holds both
    already (`take_lock` False). API jobs wait for the lock without blocking: while they wait they stay queued, so a
    cancel only withdraws them and never interrupts the generation that holds the lock."""
    if not take_lock:
        job.begin()
        work()
        return
    job.message = "Waiting for the WebUI to finish its current work."
    lock = call_queue.queue_lock   # the host's FIFOLock: no timeout, so poll without blocking
    while not lock.acquire(blocking=False):
        if job.stop.is_set():
            return
        time.sleep(0.25)
    try:
        if job.stop.is_set():
            return
        job.begin()
        shared.state.begin(job=state_name)
        try:
            work()
        finally:
            shared.state.end()
            shared.total_tqdm.clear()
    finally:
        lock.release()
