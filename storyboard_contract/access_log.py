"""Access logs without secrets. uvicorn's access log writes each request's path with its
query string, where a careless client puts a token (`?token=`, `?access_token=`): refused,
and still written to the log whole. `storyboard serve` and the GPU daemon both put RedactQuery
on that log, which writes every value of a query as *** and keeps the names (what was asked
stays readable: `GET /api/tasks?limit=***&token=***`). Only ``logging`` is imported."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"
HIDDEN = "***"


def redacted(path: str) -> str:
    """A request path with each value of its query string written as ***."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    names = (part.partition("=")[0] for part in query.split("&"))
    return f"{base}?" + "&".join(f"{name}={HIDDEN}" for name in names)


class RedactQuery(logging.Filter):
    """A filter of uvicorn's access log: its records' arguments are (client, method, path
    with query, HTTP version, status); the path loses its query's values."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redacted(args[2]), *args[3:])
        return True
