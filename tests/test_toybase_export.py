"""Exporting the shipped toy base for A1111: checkpoint, the .yaml the WebUI reads for its sizes, the CLIP folder."""
from __future__ import annotations

import filecmp
import os

import pytest
import yaml

from lib_storyboard.cli import main as cli_main
from lib_storyboard.models import toybase_path
from lib_storyboard.models.a1111_export import ExportError, export_checkpoint


def test_export_writes_checkpoint_yaml_and_clip_folder(tmp_path):
    paths = export_checkpoint(toybase_path(), str(tmp_path), "toy")
    ckpt, yml, clip = paths
    assert filecmp.cmp(ckpt, toybase_path(), shallow=False)
    cfg = yaml.safe_load(open(yml))["model"]["params"]
    version = cfg["cond_stage_config"]["params"]["version"]
    assert os.path.isabs(version) and os.path.samefile(version, clip)
    assert {"config.json", "vocab.json", "merges.txt"} <= set(os.listdir(clip))
    assert cfg["unet_config"]["params"]["context_dim"] == 64
    assert sorted(os.listdir(tmp_path)) == ["toy-clip", "toy.safetensors", "toy.yaml"]


def test_export_refuses_a_missing_folder_and_writes_nothing(tmp_path):
    with pytest.raises(ExportError, match="is not a folder"):
        export_checkpoint(toybase_path(), str(tmp_path / "nope"))
    lone = tmp_path / "lone.safetensors"
    lone.write_bytes(b"x")
    with pytest.raises(ExportError, match="config folder"):
        export_checkpoint(str(lone), str(tmp_path))
    assert os.listdir(tmp_path) == ["lone.safetensors"]


def test_cli_export_toybase(tmp_path, capsys):
    assert cli_main(["export-toybase", str(tmp_path)]) == 0
    assert os.path.isfile(tmp_path / "toybase.yaml") and "wrote" in capsys.readouterr().out
    assert cli_main(["export-toybase", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
