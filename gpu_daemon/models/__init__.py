"""The models a GPU box renders with, as users keep them: which files make a model and what
they are (checkpoints.py: a single-file checkpoint read from its header alone), where to load
them from (sources.py: a ModelSpec, resolved offline against the disk and the Hugging Face
cache), what goes on top (loras.py, schedulers.py), and what made each image (provenance.py).
original_layout.py writes a diffusers pipeline back into the single-file layout that model
sites distribute, for the tests' random-weight builds."""
