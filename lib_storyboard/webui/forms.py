"""Gradio components built from an options class's field declarations (label, range, step, choices), so the UI
shows exactly what validation accepts."""
import gradio as gr

from ..options import ui_spec


def component(options_cls, key: str, value, elem_id: str, **overrides):
    """The widget of field `key`; `overrides` (e.g. a dropdown's choices known only in the host) win."""
    s = ui_spec(options_cls, key)
    label = overrides.pop("label", s.label)
    if s.widget == "checkbox":
        return gr.Checkbox(label=label, value=value, elem_id=elem_id, **overrides)
    if s.widget in ("radio", "dropdown") or "choices" in overrides:
        make = gr.Radio if s.widget == "radio" and "choices" not in overrides else gr.Dropdown
        return make(label=label, choices=list(overrides.pop("choices", s.choices)), value=value, elem_id=elem_id,
                    **overrides)
    if s.widget == "slider" and value is not None:
        return gr.Slider(label=label, minimum=s.minimum, maximum=s.maximum, step=s.step, value=value,
                         elem_id=elem_id, **overrides)
    if s.widget == "number":
        return gr.Number(label=label, value=value, precision=0 if s.step == 1 else None, elem_id=elem_id,
                         **overrides)
    return gr.Textbox(label=label, value=value, lines=s.lines, elem_id=elem_id, **overrides)
