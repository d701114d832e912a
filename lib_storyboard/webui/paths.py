"""Where this extension's files live in the host's folders, and how an API answer names them."""
import os

from modules import paths, paths_internal, shared

from .. import storyboard_models
from ..training.outputs import OutputPaths


def lora_dir() -> str:
    return getattr(shared.cmd_opts, "lora_dir", None) or os.path.join(paths.models_path, "Lora")


def storyboard_dir() -> str:
    """Training states, previews and downloaded detectors (--storyboard-dir, else models/storyboard)."""
    return getattr(shared.cmd_opts, "storyboard_dir", None) or os.path.join(paths.models_path, "storyboard")


def output_paths() -> OutputPaths:
    return OutputPaths(lora_dir=lora_dir(), embeddings_dir=shared.cmd_opts.embeddings_dir,
                       state_dir=os.path.join(storyboard_dir(), "state"))


def preview_path(name: str) -> str:
    return os.path.join(storyboard_dir(), "previews", f"{name}.png")


def list_models() -> list[storyboard_models.StoryboardModel]:
    """The trained storyboard models in the host's LoRA folder, newest first."""
    return storyboard_models.list_models([lora_dir()])


def inside_folder(root: str, path: str) -> bool:
    """Whether `path` is `root` or inside it, links resolved."""
    root = os.path.realpath(root)
    return os.path.commonpath([root, os.path.realpath(path)]) == root


def inside_webui(path: str) -> bool:
    return inside_folder(paths_internal.data_path, path)


def public_path(path: str) -> str:
    """A server path as an API answer shows it: relative to the WebUI's data folder, else only its name."""
    root = os.path.abspath(paths_internal.data_path)
    full = os.path.abspath(path)
    if os.path.commonpath([root, full]) == root:
        return os.path.relpath(full, root).replace(os.sep, "/")
    return os.path.basename(full)
