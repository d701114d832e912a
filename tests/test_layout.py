"""The host layer stays in one place: only lib_storyboard/webui/ and scripts/ import the host, gradio or fastapi."""
import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST_MODULES = {"modules", "networks", "launch", "gradio", "fastapi", "starlette", "modules_forge", "ldm", "sgm",
                "k_diffusion"}
HOST_LAYER = (os.path.join("lib_storyboard", "webui") + os.sep, "scripts" + os.sep)


def imported_roots(path: str) -> set[str]:
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(*tops: str):
    for top in tops:
        for folder, dirs, files in os.walk(os.path.join(REPO, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for fn in files:
                if fn.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, fn), REPO)


def test_no_host_import_outside_the_host_layer():
    offenders = {rel: sorted(imported_roots(os.path.join(REPO, rel)) & HOST_MODULES)
                 for rel in python_files("lib_storyboard", "tests", "benchmarks", "tools")
                 if not rel.startswith(HOST_LAYER)}
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"host modules imported outside lib_storyboard/webui/ and scripts/: {offenders}"


def test_the_check_sees_a_host_import(tmp_path):
    # The check itself must be able to fail: an import inside a function counts as much as one at the top.
    p = tmp_path / "x.py"
    p.write_text("def f():\n    from modules import shared\n    import gradio as gr\n")
    assert imported_roots(str(p)) == {"modules", "gradio"}


def test_scripts_only_wire_the_host_layer():
    for rel in python_files("scripts"):
        ours = {r for r in imported_roots(os.path.join(REPO, rel)) if r == "lib_storyboard"}
        with open(os.path.join(REPO, rel), encoding="utf-8") as f:
            tree = ast.parse(f.read())
        targets = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
                   and n.module.startswith("lib_storyboard")}
        assert ours and all(t.startswith(("lib_storyboard.webui", "lib_storyboard.detailer.args")) for t in targets), \
            (rel, targets)
