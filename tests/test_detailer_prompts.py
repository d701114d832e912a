"""Region prompts: [SEP] / [PROMPT] / [SKIP], extra-network tags carried over, and the shot-token swap."""
from lib_storyboard.detailer.prompts import region_negatives, region_prompts

MAIN = "<fs_trg> eye level, a knight in a forest <lora:sb_style:0.8>"


def test_empty_pass_prompt_means_the_main_prompt():
    assert region_prompts("", "a cat", 2) == ["a cat", "a cat"]
    assert region_negatives("", "blurry", 2) == ["blurry", "blurry"]


def test_prompt_placeholder_inserts_the_main_prompt():
    assert region_prompts("[PROMPT], detailed face", "a cat", 1) == ["a cat, detailed face"]
    assert region_negatives("[PROMPT], bad eyes", "blurry", 1) == ["blurry, bad eyes"]


def test_sep_gives_each_region_its_prompt_and_the_last_repeats():
    assert region_prompts("red hair [SEP] blue hair", "x", 4) == ["red hair", "blue hair", "blue hair", "blue hair"]
    assert region_prompts("red hair [SEP] [SEP] [PROMPT] smiling", "x", 3) == ["red hair", "x", "x smiling"]
    assert region_negatives("a [SEP] b", "n", 3) == ["a", "b", "b"]


def test_skip_leaves_a_region_alone():
    assert region_prompts("[SKIP] [SEP] old man [SEP] [skip]", "x", 4) == [None, "old man", None, None]


def test_face_pass_swaps_the_shot_trigger_to_close_up_and_keeps_lora():
    assert region_prompts("", MAIN, 1, "face") == [
        "<cu_trg> eye level, a knight in a forest <lora:sb_style:0.8>"]
    # a custom prompt without trigger or tag gets the main prompt's, then the swap
    assert region_prompts("detailed face", MAIN, 1, "face") == ["<cu_trg> detailed face <lora:sb_style:0.8>"]


def test_hand_pass_drops_the_trigger_person_pass_keeps_it():
    assert region_prompts("", MAIN, 1, "hand") == ["eye level, a knight in a forest <lora:sb_style:0.8>"]
    assert region_prompts("gauntlet", "<ms_trg> a knight", 1, "hand") == ["gauntlet"]
    assert region_prompts("", MAIN, 1, "person") == [MAIN]
    assert region_prompts("armour", MAIN, 1, "person") == ["<fs_trg> armour <lora:sb_style:0.8>"]


def test_swap_off_changes_nothing_but_the_syntax():
    assert region_prompts("", MAIN, 1, "face", shot_swap=False) == [MAIN]
    assert region_prompts("[PROMPT] [SEP] face", MAIN, 2, "hand", shot_swap=False) == [
        MAIN, "face <lora:sb_style:0.8>"]


def test_trigger_already_in_the_region_prompt_is_swapped_and_no_other_is_added():
    # Both triggers the text has (one typed, one from [PROMPT]) become <cu_trg>; the main prompt's trigger is
    # not prepended on top, as it is for a region prompt without one.
    out = region_prompts("<ms_trg>, [PROMPT]", "<ms_trg> a knight", 1, "face")[0]
    assert out == "<cu_trg>, <cu_trg> a knight"
    assert "<ms_trg>" not in out
    assert region_prompts("no shot here", "no shot either", 1, "face") == ["no shot here"]
