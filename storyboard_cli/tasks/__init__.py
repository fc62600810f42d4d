"""Tasks through Redis/RQ: the jobs workers run, the worker itself, following a task's
progress, and the HTTP client for the GPU daemon."""
