"""texnets studio: a local web app (Gradio) over the trained networks and the optimisation baselines.

* ``catalog``   -- the run folders under ``--checkpoints``, what each holds, and their loaded generators;
* ``kinds``     -- the table of model types the studio offers: which tab, which controls, how it runs;
* ``functions`` -- what each tab does, as plain functions on files and numbers (no Gradio): tested directly;
* ``ui``        -- the Gradio page and its API names (``/stylize``, ``/super_resolve``, ``/sample_texture``,
  ``/sample_solid``, ``/optimize``), which only call ``functions``.

``app.py`` is the front door. Gradio is the ``[studio]`` extra: only ``ui`` imports it.
"""
from __future__ import annotations

# Uploads above this are refused (the limit; Pillow's own bomb check is 89 MP), and so are
# super-resolution outputs: a x4 network makes 16 times the pixels it is given.
DEFAULT_MAX_MEGAPIXELS = 40.0
