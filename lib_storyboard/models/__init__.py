import os

TOYBASE_DIR = os.path.join(os.path.dirname(__file__), "toybase")


def toybase_path() -> str | None:
    """The shipped toy-world base checkpoint (issue 3), or None while it is not part of the package."""
    p = os.path.join(TOYBASE_DIR, "toybase.safetensors")
    return p if os.path.isfile(p) else None
