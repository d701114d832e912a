"""What a training run leaves on disk, per model name, so several models coexist.

- `<lora_dir>/<name>.safetensors`: kohya-key LoRA with `ss_*` metadata and the three tokens bundled (`bundle_emb`)
- `<lora_dir>/<name>.json` and `<name>.preview.png`: the extra-networks card
- `<embeddings_dir>/<name>-cu_trg.safetensors` …: standalone embeddings for other tools (unique names, so a user's
  `<cu_trg>` never picks one of them by accident)
- `<state_dir>/<name>/`: the resumable state (written by the trainer)
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from .. import shots
from ..formats.embeddings import save_embedding
from ..formats.lora_file import LoraLayer, save_lora, ss_metadata
from ..formats.sidecar import write_sidecar

FORMAT_VERSION = "1"


@dataclass
class OutputPaths:
    lora_dir: str
    embeddings_dir: str
    state_dir: str

    @classmethod
    def under(cls, root: str) -> "OutputPaths":
        """The standalone layout: one folder with Lora/, embeddings/ and state/ inside."""
        return cls(os.path.join(root, "Lora"), os.path.join(root, "embeddings"), os.path.join(root, "state"))

    def lora_file(self, name: str) -> str:
        return os.path.join(self.lora_dir, name + ".safetensors")

    def embedding_file(self, name: str, stem: str) -> str:
        return os.path.join(self.embeddings_dir, f"{name}-{stem}.safetensors")


def write_outputs(paths: OutputPaths, cfg, vectors: dict, lora_weights: dict, *, step: int, started: float,
                  tag_frequency: dict, num_images: int, model_name: str, model_hash: str, preview=None) -> list[str]:
    layers = {n: LoraLayer(down=d, up=u, alpha=a) for n, (d, u, a) in lora_weights.items()}
    meta = ss_metadata(
        output_name=cfg.name, dim=cfg.rank, alpha=cfg.alpha, resolution=cfg.resolution, clip_skip=cfg.clip_skip,
        num_train_images=num_images, tag_frequency={cfg.name: tag_frequency}, base_model_name=model_name,
        training_started_at=started, trigger_words=[s.trigger for s in shots.SHOTS],
        extra={"storyboard_version": FORMAT_VERSION, "storyboard_step": str(step),
               "storyboard_max_steps": str(cfg.max_steps), "storyboard_base_hash": model_hash,
               "storyboard_trained_at": f"{time.time():.3f}", "storyboard_vectors": str(cfg.vectors_per_token),
               "ss_steps": str(step), "ss_seed": str(cfg.seed)})
    files = []
    lora_path = paths.lora_file(cfg.name)
    save_lora(lora_path, layers, bundle=vectors, metadata=meta)
    files.append(lora_path)
    for stem, vec in vectors.items():
        p = paths.embedding_file(cfg.name, stem)
        save_embedding(p, vec, name=f"{cfg.name}-{stem}", step=step, checkpoint_hash=model_hash,
                       checkpoint_name=model_name)
        files.append(p)
    desc = cfg.description or (f"Storyboard shot tokens <cu_trg> <ms_trg> <fs_trg> and style, trained on "
                               f"{num_images} images for {step} steps.")
    files += write_sidecar(lora_path, activation_text="<ms_trg>", preferred_weight=1.0, description=desc,
                           preview=preview)
    return files
