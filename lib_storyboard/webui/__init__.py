"""The host layer: everything that imports A1111 (`modules.*`), gradio or fastapi, used only from the WebUI's process
through scripts/. The rest of lib_storyboard never imports the host (tests/test_layout.py checks)."""
