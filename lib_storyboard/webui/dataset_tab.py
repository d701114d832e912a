"""The Dataset section of the Storyboard tab: photos, stills or videos → a labelled sketch dataset (with the host's
progress bar and Interrupt), its report and contact sheet, a button that hands the folder to the Train section; and
Validate: panels per shot token drawn through txt2img, read back by the shot classifier."""
import html

import gradio as gr
from modules import sd_samplers, shared
from modules.call_queue import wrap_gradio_gpu_call
from PIL import Image

from ..dataset_builder.options import DatasetOptions
from . import board_jobs, dataset_jobs
from .dataset_jobs import ValidationOptions
from .forms import component
from .paths import list_models, public_path

# The options the section shows, in this order (the handler receives them in this order too).
KNOBS = ("source", "out", "sketch", "prefix", "blacklist", "frames_per_cut", "max_frames_per_video", "dedupe",
         "min_confidence", "repeats", "max_side")
VKNOBS = ("model", "prompts", "per_token", "seed", "steps", "cfg", "width", "height", "negative", "baseline")
INTERROGATE_LABELS = {"none": "none", "deepbooru": "DeepBooru", "clip": "CLIP"}


def _sentences(msgs) -> str:
    return "".join(f"<p class='storyboard-error'>{html.escape(m)}</p>" for m in msgs)


def _run(manager, req, run):
    return manager.run_inline(manager.new_job(req), lambda j: run(j, take_lock=False))


def report_markdown(rep: dict) -> str:
    counts = ", ".join(f"{k}: {v}" for k, v in rep.get("counts", {}).items())
    lines = [f"**{len(rep.get('images', []))} images** — {counts}"]
    lines += [f"- {line}" for line in rep.get("report", [])[1:]]
    for s in rep.get("skipped", [])[:50]:
        lines.append(f"- skipped `{s['origin']}`: {s['reason']}")
    return "\n".join(lines)


def build_from_ui(id_task, interrogate, *values):
    """Runs inside the host's wrap_gradio_gpu_call: the queue lock is held and the progress task is set.
    The status comes last: the host's call wrapper appends its timing to the last output."""
    body = dict(zip(KNOBS, values))
    body["interrogate"] = interrogate
    try:
        req = dataset_jobs.validate_dataset_request(body)
    except dataset_jobs.RequestError as e:
        return None, "", gr.update(), _sentences(e.errors.values())
    job = _run(dataset_jobs.manager(), req, dataset_jobs.run_dataset)
    if job.state != "finished":
        return None, "", gr.update(), _sentences(job.errors[:1] or [job.message])
    with Image.open(job.files[1]) as im:
        sheet = im.convert("RGB")
    out = job.report["root"]
    files = "".join(f"<li>{html.escape(public_path(f))}</li>" for f in job.files)
    return sheet, report_markdown(job.report), gr.update(value=out, interactive=True), \
        f"<p>{html.escape(job.message)}</p><ul>{files}</ul>"


def matrix_markdown(conf: dict, title: str) -> str:
    names = ["cu", "ms", "fs", "none"]
    rows = [f"**{title}** — {conf['accuracy']:.0%} of {conf['total']} panels in their token's framing", "",
            "| token \\ seen | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for t in names[:3]:
        rows.append(f"| {t} | " + " | ".join(str(conf["matrix"][t][p]) for p in names) + " |")
    return "\n".join(rows)


def validate_from_ui(id_task, sampler, *values):
    body = dict(zip(VKNOBS, values))
    body["sampler_name"] = sampler
    try:
        req = dataset_jobs.validate_validation_request(body)
    except dataset_jobs.RequestError as e:
        return [], "", _sentences(e.errors.values())
    job = _run(dataset_jobs.validation_manager(), req, dataset_jobs.run_validation)
    if job.state != "finished":
        return [], "", _sentences(job.errors[:1] or [job.message])
    rep = job.report
    text = matrix_markdown(rep["trained"], "Trained tokens")
    if rep.get("baseline"):
        text += "\n\n" + matrix_markdown(rep["baseline"], "Chance level (untrained tokens, no LoRA)")
    sheets = []
    for f in job.files:
        if f.endswith(".png"):
            with Image.open(f) as im:
                sheets.append((im.convert("RGB"), "chance level" if "baseline" in f else "trained tokens"))
    files = "".join(f"<li>{html.escape(public_path(f))}</li>" for f in job.files)
    return sheets, text, f"<p>{html.escape(job.message)}</p><ul>{files}</ul>"


def _models(current=None):
    """The storyboard models, newest first; the current choice stays, else the newest is chosen."""
    names = [m.name for m in list_models()]
    return gr.update(choices=names, value=current if current in names else (names[0] if names else None))


def build_dataset_section(train_data_dir=None):
    """`train_data_dir`: the Train section's folder box, which "Use as training folder" fills."""
    defaults = DatasetOptions().to_dict()
    dummy = gr.Label(visible=False)
    with gr.Row():
        with gr.Column(scale=3):
            gr.HTML("<p>Photos, film stills or videos become a labelled sketch dataset the Train section reads as "
                    "it is: each image's shot is measured by the shot classifier (images without a person are left "
                    "out), converted to a sketch and tagged with its shot, your prefix and, if chosen, the "
                    "WebUI's interrogator. Only the output folder is written, all at once or not at all.</p>")
            w = {}
            for key in KNOBS[:5]:
                w[key] = component(DatasetOptions, key, defaults[key], f"storyboard_dataset_{key}")
            interrogate = gr.Radio(label="Interrogator tags", choices=list(dataset_jobs.INTERROGATORS),
                                   value="none", elem_id="storyboard_dataset_interrogate",
                                   info="The WebUI's DeepBooru or CLIP interrogator; its weights must already be "
                                        "downloaded (run it once in img2img).")
            with gr.Accordion("Settings", open=False):
                for key in KNOBS[5:]:
                    w[key] = component(DatasetOptions, key, defaults[key], f"storyboard_dataset_{key}")
            with gr.Row():
                build = gr.Button("Build dataset", variant="primary", elem_id="storyboard_dataset_build")
                interrupt = gr.Button("Interrupt", elem_id="storyboard_dataset_interrupt")
            built = gr.Textbox(visible=False, interactive=False, elem_id="storyboard_dataset_built")
            use = gr.Button("Use as training folder", elem_id="storyboard_dataset_use",
                            visible=train_data_dir is not None)
            status = gr.HTML(elem_id="storyboard_dataset_status")
            gr.HTML(elem_id="storyboard_dataset_progress")
        with gr.Column(scale=2):
            sheet = gr.Image(label="Contact sheet", type="pil", interactive=False, elem_id="storyboard_dataset_sheet")
            report = gr.Markdown(elem_id="storyboard_dataset_report")

    with gr.Accordion("Validate a trained model", open=False):
        gr.HTML("<p>Draws the chosen number of panels per shot token through txt2img with your prompts, reads "
                "each with the shot classifier and shows the confusion matrix. The chance level is the same "
                "prompts and seeds drawn with the untrained tokens and no LoRA. Results go to "
                "<code>outputs/storyboard-validation</code>.</p>")
        vdefaults = ValidationOptions().to_dict()
        v = {}
        with gr.Row():
            models = [m.name for m in list_models()]
            v["model"] = gr.Dropdown(label="Storyboard model", choices=models, value=models[0] if models else None,
                                     elem_id="storyboard_validate_model", scale=3)
            vrefresh = gr.Button("Refresh", elem_id="storyboard_validate_refresh", scale=1)
        v["prompts"] = component(ValidationOptions, "prompts", vdefaults["prompts"], "storyboard_validate_prompts")
        with gr.Row():
            for key in ("per_token", "seed", "steps", "cfg"):
                v[key] = component(ValidationOptions, key, vdefaults[key], f"storyboard_validate_{key}")
        with gr.Row():
            for key in ("width", "height"):
                v[key] = component(ValidationOptions, key, vdefaults[key], f"storyboard_validate_{key}")
            sampler = gr.Dropdown(label="Sampler", choices=[s.name for s in sd_samplers.visible_samplers()],
                                  value=board_jobs.DEFAULT_SAMPLER, elem_id="storyboard_validate_sampler")
        v["negative"] = component(ValidationOptions, "negative", vdefaults["negative"], "storyboard_validate_negative")
        v["baseline"] = component(ValidationOptions, "baseline", vdefaults["baseline"], "storyboard_validate_baseline")
        with gr.Row():
            validate = gr.Button("Validate", variant="primary", elem_id="storyboard_validate")
            vinterrupt = gr.Button("Interrupt", elem_id="storyboard_validate_interrupt")
        with gr.Row():
            with gr.Column():
                matrix = gr.Markdown(elem_id="storyboard_validate_matrix")
                vstatus = gr.HTML(elem_id="storyboard_validate_status")
                gr.HTML(elem_id="storyboard_validate_progress")
            sheets = gr.Gallery(label="Sheets", columns=2, elem_id="storyboard_validate_sheets")

    build.click(wrap_gradio_gpu_call(build_from_ui, extra_outputs=[None, "", gr.update()]),
                _js="storyboard_start_dataset", inputs=[dummy, interrogate] + [w[k] for k in KNOBS],
                outputs=[sheet, report, built, status])
    interrupt.click(lambda: shared.state.interrupt(), inputs=[], outputs=[])
    if train_data_dir is not None:
        use.click(lambda folder: gr.update(value=folder) if folder else gr.update(), inputs=[built],
                  outputs=[train_data_dir])
    validate.click(wrap_gradio_gpu_call(validate_from_ui, extra_outputs=[[], ""]), _js="storyboard_start_validate",
                   inputs=[dummy, sampler] + [v[k] for k in VKNOBS], outputs=[sheets, matrix, vstatus])
    vinterrupt.click(lambda: shared.state.interrupt(), inputs=[], outputs=[])
    vrefresh.click(_models, inputs=[v["model"]], outputs=[v["model"]])
