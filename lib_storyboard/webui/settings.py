"""Settings → Storyboard: the options of the shot triggers and of the detailer, registered with the host and read back
through the accessors below (nothing else reads `shared.opts` for our keys)."""
import gradio as gr
from modules import shared

from .paths import list_models

SECTION = ("storyboard", "Storyboard")

OPT_MODEL = "storyboard_model"
LAST_TRAINED = "Last trained"          # the setting's default: the newest trained storyboard model
FROM_SETTINGS = "Settings default"     # the triggers accordion's default: whatever the setting says
OPT_APPLY_LORA = "storyboard_apply_lora"
OPT_LORA_WEIGHT = "storyboard_lora_weight"

OPT_BOARD_DIR = "storyboard_board_dir"
OPT_BOARD_FONT = "storyboard_board_font"

OPT_MAX_PASSES = "storyboard_detailer_max_passes"
OPT_SAVE_BEFORE = "storyboard_detailer_save_before"
OPT_SAVE_MASKS = "storyboard_detailer_save_masks"
DEFAULT_MAX_PASSES = 2


def add_settings() -> None:
    """`script_callbacks.on_ui_settings`."""
    add = shared.opts.add_option
    add(OPT_MODEL, shared.OptionInfo(
        LAST_TRAINED, "Storyboard model used by <cu_trg>, <ms_trg>, <fs_trg>", gr.Dropdown,
        lambda: {"choices": [LAST_TRAINED] + [m.name for m in list_models()]}, refresh=lambda: None,
        section=SECTION))
    add(OPT_APPLY_LORA, shared.OptionInfo(
        True, "Apply the model's style LoRA when a prompt has a shot trigger", section=SECTION))
    add(OPT_LORA_WEIGHT, shared.OptionInfo(
        1.0, "Style LoRA weight", gr.Slider, {"minimum": 0.0, "maximum": 2.0, "step": 0.05}, section=SECTION))
    add(OPT_BOARD_DIR, shared.OptionInfo(
        "", "Folder for storyboard boards (empty: storyboard-boards beside the txt2img outputs folder)",
        section=SECTION))
    add(OPT_BOARD_FONT, shared.OptionInfo(
        "", "Board caption font file (TrueType/OpenType; empty: the first installed font that covers the text, "
        "e.g. Korean dialogue)", section=SECTION))
    add(OPT_MAX_PASSES, shared.OptionInfo(
        DEFAULT_MAX_PASSES, "Detailer passes (tabs in the Storyboard detailer accordion)", gr.Slider,
        {"minimum": 1, "maximum": 6, "step": 1}, section=SECTION).needs_reload_ui())
    add(OPT_SAVE_BEFORE, shared.OptionInfo(
        False, "Detailer: also save each image as it was before detailing", section=SECTION))
    add(OPT_SAVE_MASKS, shared.OptionInfo(
        False, "Detailer: also save a preview of the detections and the masks redrawn", section=SECTION))


def get(key: str, default=None):
    return shared.opts.data.get(key, default)


def max_passes() -> int:
    try:
        return max(1, int(get(OPT_MAX_PASSES, DEFAULT_MAX_PASSES)))
    except (TypeError, ValueError):
        return DEFAULT_MAX_PASSES
