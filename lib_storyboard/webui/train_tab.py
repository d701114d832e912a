"""The Storyboard tab: a dataset folder, a preset and the training options (each widget built from its TrainConfig
field), Train / Interrupt with the host's progress bar, the preview grid and the trained models."""
import html
import time

import gradio as gr
from modules.call_queue import wrap_gradio_gpu_call
from PIL import Image

from ..dataset.scan import DatasetError, scan_folder
from ..training.config import PRESETS, ConfigError, TrainConfig
from .capabilities import training_unavailable
from .board_tab import build_board_section
from .composition_ui import build_compose_section
from .dataset_tab import build_dataset_section
from .forms import component
from .paths import list_models, public_path
from .train_jobs import interrupt_active, manager, run_job, validate_request

# The options the tab shows under Settings, in this order (the handler receives them in this order too).
KNOBS = ("max_steps", "resolution", "batch_size", "vectors_per_token", "rank", "alpha", "ti_lr", "unet_lr", "ti_frac",
         "train_text_encoder", "text_encoder_lr", "gradient_checkpointing", "min_snr_gamma", "noise_offset",
         "min_timestep", "max_timestep", "caption_dropout", "shuffle_tags", "clip_skip", "prior_loss_weight",
         "class_images", "class_prompt", "class_steps", "class_cfg", "save_every",
         "preview_every", "preview_prompt", "seed", "resume", "description")
PRESET_KEYS = sorted({k for p in PRESETS.values() for k in p} & set(KNOBS))


def _preset_values(preset: str) -> dict:
    return TrainConfig.from_dict({"preset": preset}).to_dict()


def _sentences(msgs) -> str:
    return "".join(f"<p class='storyboard-error'>{html.escape(m)}</p>" for m in msgs)


def config_from_ui(data_dir, name, preset, *values) -> dict:
    options = {"data_dir": (data_dir or "").strip(), "name": (name or "").strip(), "preset": preset}
    options.update(zip(KNOBS, values))
    return options


def train_from_ui(id_task, data_dir, name, preset, *values):
    """Runs inside the host's wrap_gradio_gpu_call: the queue lock is held and the progress task is set."""
    try:
        cfg = validate_request(config_from_ui(data_dir, name, preset, *values))
    except ConfigError as e:
        return None, "", _sentences(e.errors.values())
    busy = manager().pending()
    if busy is not None:
        return None, "", _sentences([f"Storyboard training job {busy.id} (from the API) is {busy.state}; wait for "
                                     "it to end or cancel it first."])
    job = manager().run_inline(manager().new_job(cfg), lambda j: run_job(j, take_lock=False))
    report = report_markdown(job.report) if job.report else ""
    if job.state == "failed":
        return None, report, _sentences(job.errors[:1])
    img = Image.open(job.preview).copy() if job.preview else None
    files = "".join(f"<li>{html.escape(public_path(f))}</li>" for f in job.files
                    if f.endswith((".safetensors", ".png")))
    if not job.files:       # stopped before it learned anything: nothing was written, and the message says so
        head = job.message
    elif job.state == "interrupted":
        head = "Interrupted — what was learned is saved; tick Resume to continue."
    else:
        head = "Finished."
    return img, report, (f"<p>{html.escape(head)} Step {job.step}/{job.total}, loss {job.loss or 0:.4f}.</p>"
                         f"<ul>{files}</ul>")


def report_markdown(rep: dict) -> str:
    lines = [f"**{rep.get('used', len(rep.get('items', [])))} images** — " +
             ", ".join(f"{k}: {v}" for k, v in rep.get("counts", {}).items())]
    if rep.get("buckets"):
        lines.append("Buckets: " + ", ".join(f"{k} ({v})" for k, v in rep["buckets"].items()))
    lines += [f"- **{w}**" for w in rep.get("warnings", [])]
    for s in rep.get("skipped", []):
        lines.append(f"- skipped `{s.get('rel_path') or s.get('path')}`: {s.get('reason')}")
    for u in rep.get("unlabelled", []):
        lines.append(f"- no shot tag or folder, skipped: `{u}`")
    return "\n".join(lines)


def scan_ui(data_dir):
    try:
        return report_markdown(scan_folder((data_dir or "").strip()).as_dict())
    except DatasetError as e:
        return str(e)


def models_html() -> str:
    models = list_models()
    if not models:
        return "<p>No storyboard model is trained yet.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(m.name)}</td><td>{m.step}</td><td>{m.as_dict()['images']}</td>"
        f"<td>{html.escape(m.metadata.get('ss_sd_model_name', ''))}</td>"
        f"<td>{time.strftime('%Y-%m-%d %H:%M', time.localtime(m.trained_at))}</td></tr>" for m in models)
    return ("<table class='storyboard-models'><tr><th>Model</th><th>Steps</th><th>Images</th><th>Base</th>"
            f"<th>Trained</th></tr>{rows}</table>")


def build_tab():
    """`script_callbacks.on_ui_tabs`."""
    defaults = _preset_values("balanced")
    unavailable = training_unavailable()
    with gr.Blocks(analytics_enabled=False) as tab, gr.Tabs(elem_id="storyboard_sections"):
        with gr.Tab("Train", elem_id="storyboard_train_section"):
            data_dir = _train_section(defaults, unavailable)
        with gr.Tab("Board", elem_id="storyboard_board_section"):
            build_board_section()
        with gr.Tab("Dataset", elem_id="storyboard_dataset_section"):
            build_dataset_section(train_data_dir=data_dir)
        with gr.Tab("Compose", elem_id="storyboard_compose_section"):
            build_compose_section()
    return [(tab, "Storyboard", "storyboard")]


def _train_section(defaults: dict, unavailable: str | None):
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
                data_dir = component(TrainConfig, "data_dir", "", "storyboard_data_dir", scale=4,
                                     placeholder="folder of sketches with .txt tags")
                scan = gr.Button("Scan", elem_id="storyboard_scan", scale=1)
            with gr.Row():
                name = component(TrainConfig, "name", defaults["name"], "storyboard_name")
                preset = component(TrainConfig, "preset", defaults["preset"], "storyboard_preset",
                                   choices=list(PRESETS))
            with gr.Accordion("Settings", open=False):
                knobs = [component(TrainConfig, key, defaults[key], f"storyboard_{key}") for key in KNOBS]
            with gr.Row():
                train = gr.Button("Train", variant="primary", elem_id="storyboard_train",
                                  interactive=unavailable is None)
                interrupt = gr.Button("Interrupt", elem_id="storyboard_interrupt")
            status = gr.HTML(elem_id="storyboard_status")
            gr.HTML(elem_id="storyboard_loss")
            gr.HTML(elem_id="storyboard_progress")
        with gr.Column(scale=2):
            # No floating label: it would cover the token names drawn along the grid's top edge.
            preview = gr.Image(label="Preview (one column per shot token)", show_label=False, type="pil",
                               interactive=False, elem_id="storyboard_preview")
            report = gr.Markdown(elem_id="storyboard_report")
            with gr.Accordion("Trained models", open=False):
                models = gr.HTML(models_html(), elem_id="storyboard_models")
                refresh = gr.Button("Refresh", elem_id="storyboard_refresh_models")

    preset_outputs = [knobs[KNOBS.index(k)] for k in PRESET_KEYS]
    preset.change(lambda p: [gr.update(value=_preset_values(p)[k]) for k in PRESET_KEYS],
                  inputs=[preset], outputs=preset_outputs)
    scan.click(scan_ui, inputs=[data_dir], outputs=[report])
    train.click(wrap_gradio_gpu_call(train_from_ui, extra_outputs=[None, ""]), _js="storyboard_start_training",
                inputs=[dummy, data_dir, name, preset] + knobs, outputs=[preview, report, status]
                ).then(models_html, inputs=[], outputs=[models])
    interrupt.click(interrupt_active, inputs=[], outputs=[])
    refresh.click(models_html, inputs=[], outputs=[models])
    return data_dir
