"""What this WebUI offers the extension, checked by what the code uses (objects and attributes), never by the name
of the folder or fork: A1111 has all of it; Forge, for one, has no textual-inversion database to register in."""
import ipaddress
import itertools

from modules import initialize_util, shared

NO_EMBEDDING_DB = ("This WebUI has no textual-inversion database (A1111's sd_hijack.model_hijack.embedding_db; Forge "
                   "keeps embeddings in its text engine), so the storyboard triggers <cu_trg>, <ms_trg> and <fs_trg> "
                   "do nothing here.")


def embedding_db():
    """The host's textual-inversion database, or None where this WebUI has none that vectors can be registered in."""
    try:
        from modules import sd_hijack   # imported here: a WebUI without it (a fork) is what this checks for
    except ImportError:
        return None
    db = getattr(getattr(sd_hijack, "model_hijack", None), "embedding_db", None)
    needed = ("register_embedding_by_name", "word_embeddings", "load_textual_inversion_embeddings")
    return db if db is not None and all(hasattr(db, a) for a in needed) else None


def training_unavailable() -> str | None:
    """Why this WebUI cannot train, in one sentence, or None (then the loaded checkpoint is checked per run)."""
    if embedding_db() is None:
        return ("Training in this WebUI is not possible: it has no textual-inversion database (A1111's "
                "sd_hijack.model_hijack.embedding_db) to train the shot tokens through; use the standalone trainer "
                "(python -m lib_storyboard train) and copy its files into models/Lora.")
    try:
        from modules import call_queue   # likewise
    except ImportError:
        call_queue = None
    if not hasattr(call_queue, "queue_lock"):
        return "Training in this WebUI is not possible: it has no generation queue lock to train under."
    return None


def untrainable_checkpoint(m) -> str | None:
    """Why the loaded checkpoint cannot be trained on, in one sentence, or None."""
    if m is None or not hasattr(m, "cond_stage_model"):
        return "No SD1.5 checkpoint is loaded; load one in the checkpoint dropdown first."
    if any(p.is_inference() for p in itertools.islice(m.parameters(), 4)):
        return ("The loaded checkpoint's weights are inference tensors (as Forge loads them), which cannot be "
                "trained; use the standalone trainer (python -m lib_storyboard train).")
    kind = ("SDXL" if getattr(m, "is_sdxl", False) else "SD3" if getattr(m, "is_sd3", False)
            else "SD2" if getattr(m, "is_sd2", False) else None)
    if kind or not getattr(m, "is_sd1", True) or \
            not hasattr(getattr(m.cond_stage_model, "wrapped", None), "transformer"):
        return (f"The loaded checkpoint is {kind or 'not SD1.x'}; storyboard training needs an SD1.5 checkpoint, so "
                "select one in the checkpoint dropdown.")
    if getattr(shared.cmd_opts, "lowvram", False):
        return "Training is not possible with --lowvram; restart the WebUI without it (--medvram works, more slowly)."
    return None


# -- the HTTP API ---------------------------------------------------------------------------------------------------
def api_enabled() -> bool:
    """The host creates its API with --api, and always in its API-only mode (--nowebui)."""
    return bool(getattr(shared.cmd_opts, "api", False) or getattr(shared.cmd_opts, "nowebui", False))


def api_credentials() -> dict[str, str]:
    """--api-auth's users; with none, --gradio-auth's (our routes read server folders, so a WebUI login guards them)."""
    pairs = [p.split(":", 1) for p in (shared.cmd_opts.api_auth or "").split(",") if ":" in p]
    if not pairs:
        pairs = [list(c) for c in initialize_util.get_gradio_auth_creds() if len(c) == 2]
    return {user.strip(): password for user, password in pairs}


def network_exposed() -> bool:
    """Whether the server answers beyond this machine (--listen, --share, --ngrok, a non-loopback --server-name)."""
    o = shared.cmd_opts
    if getattr(o, "listen", False) or getattr(o, "share", False) or getattr(o, "ngrok", None):
        return True
    name = getattr(o, "server_name", None)
    if not name or name == "localhost":
        return False
    try:
        return not ipaddress.ip_address(name).is_loopback
    except ValueError:
        return True
