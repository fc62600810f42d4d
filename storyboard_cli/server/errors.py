"""What an error answers over HTTP: a status and one line, the same line the CLI prints.

NotFound 404, bad input 422 (UsageError, ConfigError), a service down 503 (ServiceUnavailable,
and the connection errors of Redis and httpx, worded as the CLI words them), anything else
500 without a traceback. Messages go through redact_urls: no credentials in an answer or log.
"""

from __future__ import annotations

import logging

from storyboard_contract.config import redact_urls
from storyboard_contract.errors import NotFound, ServiceUnavailable, StoryboardError, UsageError

log = logging.getLogger("storyboard.serve")


def status_and_message(exc: Exception) -> tuple[int, str]:
    from storyboard_cli.commands.common import _as_service_error

    if isinstance(exc, StoryboardError):
        status = 404 if isinstance(exc, NotFound) else 422 if isinstance(exc, UsageError) \
            else 503 if isinstance(exc, ServiceUnavailable) else 500
        return status, redact_urls(str(exc))
    mapped = _as_service_error(exc)
    if mapped is not None:
        return 503, redact_urls(str(mapped))
    # The operator's log says what happened; the answer only that something did.
    log.error("unexpected %s: %s", type(exc).__name__, redact_urls(str(exc)),
              exc_info=log.isEnabledFor(logging.DEBUG))
    return 500, f"unexpected {type(exc).__name__} on the server (see its log)"
