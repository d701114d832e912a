from lib_storyboard import shots


def test_triggers_are_found_before_space_comma_period_and_end():
    for text in ("<cu_trg> a man", "<cu_trg>, a man", "a man <cu_trg>.", "a man <cu_trg>", "(<cu_trg>) x",
                 "<CU_TRG>, caps"):
        assert shots.find_triggers(text) == [shots.BY_KEY["cu"]], text
    assert shots.find_triggers("<cu_trg>x <cu_trgs> cu_trg") == []
    assert [s.key for s in shots.find_triggers("<fs_trg>, <ms_trg>, <fs_trg>")] == ["fs", "ms"]


def test_shot_from_tags_and_folder_names():
    expect = {"close-up": "cu", "Close Up": "cu", "cu": "cu", "<cu_trg>": "cu", "10_close-up": "cu",
              "medium shot": "ms", "MS": "ms", "cowboy shot": "ms", "full shot": "fs", "long shot": "fs",
              "fs_trg": "fs", "full_body": "fs"}
    for tag, key in expect.items():
        assert shots.shot_from_tag(tag).key == key, tag
    for tag in ("1girl", "close", "shot", "", "portrait"):
        assert shots.shot_from_tag(tag) is None, tag


def test_swap_trigger_for_face_and_hand_regions():
    p = "<fs_trg>, a knight in a field <lora:style:1>"
    assert shots.swap_trigger(p, shots.BY_KEY["cu"]) == "<cu_trg>, a knight in a field <lora:style:1>"
    assert shots.swap_trigger(p, None) == "a knight in a field <lora:style:1>"
