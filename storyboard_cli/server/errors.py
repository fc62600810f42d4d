"""What an error answers over HTTP: a status and one line, the same line the CLI prints.

Each error class declares its status (storyboard_contract/errors.py: NotFound 404, bad input
422, a service down 503); the connection errors of Redis and httpx are worded as the CLI words
them (service.unreachable_service) and answer 503; anything else 500 without a traceback.
Messages go through redact_urls (no credentials in an answer or log) and
control_chars.visible (one line, always encodable).
"""

from __future__ import annotations

import logging

from storyboard_cli.service import unreachable_service
from storyboard_contract import control_chars
from storyboard_contract.config import redact_urls
from storyboard_contract.errors import ServerFailed, StoryboardError

log = logging.getLogger("storyboard.serve")


def status_and_message(exc: Exception) -> tuple[int, str]:
    known = exc if isinstance(exc, StoryboardError) else unreachable_service(exc)
    if known is not None:
        # Escaped: the line may quote the client's text (a lone surrogate cannot be sent).
        return known.http_status, control_chars.visible(redact_urls(str(known)))
    # The operator's log says what happened; the answer only that something did.
    log.error("unexpected %s: %s", type(exc).__name__, redact_urls(str(exc)),
              exc_info=log.isEnabledFor(logging.DEBUG))
    return ServerFailed.http_status, f"unexpected {type(exc).__name__} on the server (see its log)"
