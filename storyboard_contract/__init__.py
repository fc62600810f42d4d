"""What the host and the GPU box agree on: the one package both sides import.

``storyboard_cli`` (the host: CLI, store, queue, server) and ``gpu_daemon`` (the GPU box) never
import each other; everything they must both know lives here, defined once:

  wire.py           the HTTP contract between a worker and the daemon (pydantic models, bounds)
  config.py         ``storyboard.toml`` + environment: one typed file both sides read
  errors.py         the exception tree, each class with its exit code and HTTP status
  s3.py             bucket client settings, presigned links, key layout
  guards.py         bearer-token and body-size ASGI guards (the daemon and ``storyboard serve``)
  frames.py         frame aspects and sizes
  control_chars.py  what counts as a control character, how it is shown
  cjk.py            the CJK character ranges
  tokens.py         CLIP token estimate and the description budget
  typeset.py        the CJK font and line breaking of captions

Import rule: this package imports neither side, and nothing heavy at module level (pydantic in
wire.py; starlette in guards.py, which only the two HTTP servers import; boto3 and Pillow only
inside the functions that need them), so the CLI can read it at start-up.
"""
