"""Offline, reproducible test environment: no hub, no telemetry, caches under a temporary folder."""
import os
import tempfile

_tmp = tempfile.mkdtemp(prefix="storyboard-tests-")
for key, value in {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
    "GRADIO_ANALYTICS_ENABLED": "False", "YOLO_CONFIG_DIR": os.path.join(_tmp, "yolo"),
    "STORYBOARD_CACHE": os.path.join(_tmp, "cache"), "MPLBACKEND": "Agg",
}.items():
    os.environ.setdefault(key, value)

import torch  # noqa: E402  (after the environment is set)

# The CI machine has 2 cores; more threads than cores makes small models spin rather than compute.
torch.set_num_threads(1)
