"""The after-detailer core: pass arguments, mask operations, region prompts, the region plan and its runner.

Host-independent: the host glue supplies `detect` (usually `run.catalog_detect(DetectorCatalog(...))`) and
`inpaint` (its own img2img); `diffusers_inpaint.DiffusersInpainter` is the standalone/test inpainter.
"""
