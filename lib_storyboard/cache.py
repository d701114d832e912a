"""Where the extension keeps files it can rebuild (tokenizer files, assembled configs): never inside the package,
which may be read-only."""
import os


def cache_root() -> str:
    return os.environ.get("STORYBOARD_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sd-webui-storyboard")
