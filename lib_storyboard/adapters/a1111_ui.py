"""The Storyboard tab (gradio 3.41 API, which Forge's gradio-4 shims also accept)."""
from __future__ import annotations

import html
import time

import gradio as gr

from ..dataset.scan import DatasetError, scan_folder
from ..training.config import PRESETS, ConfigError, TrainConfig
from . import a1111_host as host

# (config key, label, component kind, extra args) in the order the handler receives them.
KNOBS = [
    ("max_steps", "Steps", "number", dict(precision=0)),
    ("resolution", "Resolution", "slider", dict(minimum=64, maximum=1024, step=64)),
    ("batch_size", "Batch size", "slider", dict(minimum=1, maximum=16, step=1)),
    ("vectors_per_token", "Vectors per token", "slider", dict(minimum=1, maximum=8, step=1)),
    ("rank", "LoRA rank", "slider", dict(minimum=1, maximum=64, step=1)),
    ("alpha", "LoRA alpha", "number", {}),
    ("ti_lr", "Token learning rate", "number", {}),
    ("unet_lr", "LoRA learning rate", "number", {}),
    ("ti_frac", "Token phase (fraction of the run)", "slider", dict(minimum=0, maximum=1, step=0.05)),
    ("train_text_encoder", "Text-encoder LoRA", "checkbox", {}),
    ("text_encoder_lr", "Text-encoder learning rate", "number", {}),
    ("gradient_checkpointing", "Gradient checkpointing (less memory, slower)", "checkbox", {}),
    ("min_snr_gamma", "Min-SNR γ (0 = off)", "number", {}),
    ("noise_offset", "Noise offset", "number", {}),
    ("min_timestep", "Min timestep (higher: learn composition, not detail)", "slider",
     dict(minimum=0, maximum=999, step=1)),
    ("max_timestep", "Max timestep", "slider", dict(minimum=0, maximum=999, step=1)),
    ("caption_dropout", "Caption dropout", "slider", dict(minimum=0, maximum=1, step=0.05)),
    ("shuffle_tags", "Shuffle tags (trigger stays first)", "checkbox", {}),
    ("clip_skip", "Clip skip", "slider", dict(minimum=1, maximum=4, step=1)),
    ("save_every", "Save every N steps (0 = at the end)", "number", dict(precision=0)),
    ("preview_every", "Preview every N steps (0 = off)", "number", dict(precision=0)),
    ("preview_prompt", "Preview prompt (after the trigger)", "textbox", {}),
    ("seed", "Seed", "number", dict(precision=0)),
    ("resume", "Resume the saved run of this name", "checkbox", {}),
    ("description", "Description (shown on the Lora card)", "textbox", {}),
]
PRESET_KEYS = sorted({k for p in PRESETS.values() for k in p} & {k for k, *_ in KNOBS})


def _preset_values(preset: str) -> dict:
    cfg = TrainConfig.from_dict({"preset": preset})
    return cfg.to_dict()


def _component(key, label, kind, extra, value):
    if kind == "checkbox":
        return gr.Checkbox(label=label, value=value, elem_id=f"storyboard_{key}")
    if kind == "slider":
        return gr.Slider(label=label, value=value, elem_id=f"storyboard_{key}", **extra)
    if kind == "textbox":
        return gr.Textbox(label=label, value=value, lines=1, elem_id=f"storyboard_{key}")
    return gr.Number(label=label, value=value, elem_id=f"storyboard_{key}", **extra)


def _sentences(msgs) -> str:
    return "".join(f"<p class='storyboard-error'>{html.escape(m)}</p>" for m in msgs)


def config_from_ui(data_dir, name, preset, *values) -> dict:
    cfg = {"data_dir": (data_dir or "").strip(), "name": (name or "").strip(), "preset": preset}
    for (key, *_), v in zip(KNOBS, values):
        cfg[key] = v
    return cfg


def train_from_ui(id_task, data_dir, name, preset, *values):
    """Runs inside the host's wrap_gradio_gpu_call: the queue lock is held and the progress task is set."""
    options = config_from_ui(data_dir, name, preset, *values)
    try:
        host.validate_request(options)
    except ConfigError as e:
        return None, "", _sentences(e.errors.values())
    busy = host.manager().pending()
    if busy is not None:
        return None, "", _sentences([f"Storyboard training job {busy.id} (from the API) is {busy.state}; wait for "
                                     "it to end or cancel it first."])
    job = host.manager().new_job(options)
    host.manager().run_inline(job, lambda j: host.run_job(j, take_lock=False))
    report = report_markdown(job.report) if job.report else ""
    if job.state == "failed":
        return None, report, _sentences(job.errors[:1])
    img = None
    if job.preview:
        from PIL import Image
        img = Image.open(job.preview).copy()
    files = "".join(f"<li>{html.escape(f)}</li>" for f in job.files if f.endswith((".safetensors", ".png")))
    head = "Interrupted — what was learned is saved; tick Resume to continue." if job.state == "interrupted" \
        else "Finished."
    return img, report, f"<p>{head} Step {job.step}/{job.total}, loss {job.loss or 0:.4f}.</p><ul>{files}</ul>"


def report_markdown(rep: dict) -> str:
    lines = [f"**{rep.get('used', len(rep.get('items', [])))} images** — " +
             ", ".join(f"{k}: {v}" for k, v in rep.get("counts", {}).items())]
    if rep.get("buckets"):
        lines.append("Buckets: " + ", ".join(f"{k} ({v})" for k, v in rep["buckets"].items()))
    for s in rep.get("skipped", []):
        lines.append(f"- skipped `{s.get('path')}`: {s.get('reason')}")
    for u in rep.get("unlabelled", []):
        lines.append(f"- no shot tag or folder, skipped: `{u}`")
    return "\n".join(lines)


def scan_ui(data_dir):
    try:
        return report_markdown(scan_folder((data_dir or "").strip()).as_dict())
    except DatasetError as e:
        return str(e)


def models_html() -> str:
    models = host.list_models()
    if not models:
        return "<p>No storyboard model is trained yet.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(m.name)}</td><td>{m.step}</td><td>{m.as_dict()['images']}</td>"
        f"<td>{html.escape(m.metadata.get('ss_sd_model_name', ''))}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M', time.localtime(m.trained_at))}</td></tr>" for m in models)
    return ("<table class='storyboard-models'><tr><th>Model</th><th>Steps</th><th>Images</th><th>Base</th>"
            f"<th>Trained</th></tr>{rows}</table>")


def build_tab():
    from modules.call_queue import wrap_gradio_gpu_call

    defaults = _preset_values("balanced")
    unavailable = host.training_unavailable()
    with gr.Blocks(analytics_enabled=False) as tab:
        if unavailable:
            gr.HTML(f"<p class='storyboard-banner'>{html.escape(unavailable)}</p>", elem_id="storyboard_banner")
        with gr.Row():
            with gr.Column(scale=3):
                gr.HTML("<p>Train the shot tokens <code>&lt;cu_trg&gt;</code> (close-up), <code>&lt;ms_trg&gt;</code> "
                        "(medium) and <code>&lt;fs_trg&gt;</code> (full shot) with a style LoRA on the loaded SD1.5 "
                        "checkpoint. The shot of each sketch comes from a tag in its .txt file or from its "
                        "sub-folder name.</p>")
                dummy = gr.Label(visible=False)
                with gr.Row():
                    data_dir = gr.Textbox(label="Dataset folder", placeholder="folder of sketches with .txt tags",
                                          elem_id="storyboard_data_dir", scale=4)
                    scan = gr.Button("Scan", elem_id="storyboard_scan", scale=1)
                with gr.Row():
                    name = gr.Textbox(label="Model name", value="storyboard", elem_id="storyboard_name")
                    preset = gr.Dropdown(label="Preset", choices=list(PRESETS), value="balanced",
                                         elem_id="storyboard_preset")
                knobs = []
                with gr.Accordion("Settings", open=False):
                    for key, label, kind, extra in KNOBS:
                        knobs.append(_component(key, label, kind, extra, defaults[key]))
                with gr.Row():
                    train = gr.Button("Train", variant="primary", elem_id="storyboard_train",
                                      interactive=unavailable is None)
                    interrupt = gr.Button("Interrupt", elem_id="storyboard_interrupt")
                status = gr.HTML(elem_id="storyboard_status")
                loss = gr.HTML(elem_id="storyboard_loss")
                progress = gr.HTML(elem_id="storyboard_progress")
            with gr.Column(scale=2):
                # No floating label: it would cover the token names drawn along the grid's top edge.
                preview = gr.Image(label="Preview (one column per shot token)", show_label=False, type="pil",
                                   interactive=False, elem_id="storyboard_preview")
                report = gr.Markdown(elem_id="storyboard_report")
                with gr.Accordion("Trained models", open=False):
                    models = gr.HTML(models_html(), elem_id="storyboard_models")
                    refresh = gr.Button("Refresh", elem_id="storyboard_refresh_models")

        preset_outputs = [knobs[[k for k, *_ in KNOBS].index(k)] for k in PRESET_KEYS]
        preset.change(lambda p: [gr.update(value=_preset_values(p)[k]) for k in PRESET_KEYS],
                      inputs=[preset], outputs=preset_outputs)
        scan.click(scan_ui, inputs=[data_dir], outputs=[report])
        train.click(wrap_gradio_gpu_call(train_from_ui, extra_outputs=[None, ""]), _js="storyboard_start_training",
                    inputs=[dummy, data_dir, name, preset] + knobs, outputs=[preview, report, status])
        interrupt.click(lambda: host.interrupt_active(), inputs=[], outputs=[])
        refresh.click(models_html, inputs=[], outputs=[models])
    return [(tab, "Storyboard", "storyboard")]
