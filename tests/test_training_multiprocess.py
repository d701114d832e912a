"""Data-parallel standalone training: `accelerate launch` with two CPU processes (gloo) on the toy base gives the
files one process gives at the same global batch and seed.

Not bit for bit: each process runs the UNet on its share of the batch (here 2 or 3 of 5 panels), and a matrix
product over fewer rows rounds differently, and the two shares' gradients are added in another order than one
process adds them. Those float32 roundings (~1e-7 of a value) are all that differs; with a batch of 1, where one
process computes everything and the other nothing, the files are bit-equal.
"""
import os
import socket
import subprocess
import sys
import time

import torch
from safetensors import safe_open

from lib_storyboard.cli import main
from lib_storyboard.models import toybase_path
from lib_storyboard.toyworld.sketches import write_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# 12 panels at batch 5: batches of 5, 5 and 2 (shares 2+3 and 1+1), the token phase ending at step 2 and an
# epoch boundary inside the run; caption dropout makes some shares lack a token (its gradient is None there).
# With prior preservation on: the main process draws the class images, the other reads them after a barrier.
OPTIONS = ["--steps", "4", "--resolution", "64", "--set", "batch_size=5", "--set", "rank=4", "--set", "ti_frac=0.5",
           "--set", "caption_dropout=0.3", "--set", "noise_offset=0.05", "--device", "cpu",
           "--set", "prior_loss_weight=0.5", "--set", "class_images=2", "--set", "class_steps=3"]
FILES = ("Lora/mp.safetensors", "embeddings/mp-cu_trg.safetensors", "embeddings/mp-fs_trg.safetensors",
         "state/mp/state.safetensors")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tensors(path: str) -> dict:
    with safe_open(path, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def test_two_processes_write_what_one_process_writes(tmp_path, capsys):
    data = str(tmp_path / "data")
    write_dataset(data, 4, 64, 0)
    common = ["train", "--model", toybase_path(), "--data", data, "--name", "mp"] + OPTIONS
    t0 = time.perf_counter()
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    one_s = time.perf_counter() - t0
    capsys.readouterr()

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT}
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
              "--main_process_port", str(_free_port()), "-m", "lib_storyboard"]
    t0 = time.perf_counter()
    proc = subprocess.run(launch + common + ["--out", str(tmp_path / "two")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    two_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Only the main process reports: one progress line per step, one list of files.
    assert proc.stdout.count("step 4/4") == 1 and proc.stdout.count("finished at step 4") == 1, proc.stdout
    assert "6 class images (6 drawn now" in proc.stdout
    print(f"one process {one_s:.1f} s, two processes {two_s:.1f} s (with start-up)")

    worst, flips = 0.0, 0
    for rel in FILES:
        a, b = _tensors(str(tmp_path / "one" / rel)), _tensors(str(tmp_path / "two" / rel))
        assert a.keys() == b.keys(), rel
        for k in a:
            x, y = a[k].double(), b[k].double()
            if a[k].dtype == torch.float16:
                # The LoRA file is fp16: a 1e-7 difference can round a value to the neighbouring fp16 number.
                assert torch.allclose(x, y, rtol=1e-3, atol=1e-6), (rel, k)
                flips += int((x != y).sum())
            else:
                assert torch.allclose(x, y, rtol=1e-4, atol=1e-5), (rel, k)
                worst = max(worst, float((x - y).abs().max())) if x.numel() else worst
        if rel.startswith("state"):
            # The random streams were drawn identically: same noise, timesteps and captions on both sides.
            assert all(torch.equal(a[k], b[k]) for k in a if k.startswith("rng.")), rel
    lora = _tensors(str(tmp_path / "one" / FILES[0]))
    assert any(float(v.abs().max()) > 1e-4 for k, v in lora.items() if k.endswith("lora_up.weight"))  # it learned
    n16 = sum(v.numel() for v in lora.values() if v.dtype == torch.float16)
    print(f"largest difference in the fp32 state and tokens: {worst:.2e}; fp16 LoRA values one rounding apart: "
          f"{flips} of {n16}")
