"""The worker's HTTP client for the GPU daemon (wire format: storyboard_contract/wire.py).

One client per worker process: it keeps a connection pool to the daemon (through the tunnel),
so it must not be shared across a fork. Long calls stream NDJSON progress events, which are
handed to a callback as they arrive.

Failures are sorted for the retry policy:
  DaemonUnavailable  the daemon, the tunnel or the daemon's bucket could not be reached, or the
                     daemon failed (5xx): worth retrying with backoff.
  DaemonRejected     the daemon refused the request (wrong token, invalid or too large):
                     retrying the same request cannot help.
Messages name the daemon URL and never contain the token.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from storyboard_contract.config import redact_url
from storyboard_contract.errors import ConfigError, ServiceUnavailable, UsageError
from storyboard_contract.wire import (
    EVENT_KINDS,
    NDJSON,
    PLANNER_UNREACHABLE,
    DaemonStatus,
    PlanRequest,
    PlanResponse,
    ProgressEvent,
    RenderRequest,
    RenderResponse,
    RendersRequest,
    RendersResponse,
    ResultEvent,
    ShotEvent,
    ShotOutcome,
    StreamEvent,
)

if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel, TypeAdapter

    from storyboard_contract.config import DaemonConfig

OnProgress = Callable[[ProgressEvent], None]
OnShot = Callable[[ShotOutcome], None]
# The daemon's max_batch (the size of a worker's window) is asked again after this long.
STATUS_TTL_S = 30.0


class DaemonUnavailable(ServiceUnavailable):
    """Could not reach the daemon (or the daemon could not reach its bucket or its planner's
    service): retry later. `what` says which, in two words, for a task's retrying state."""

    def __init__(self, message: str, what: str = "daemon unavailable",
                 status: int | None = None) -> None:
        super().__init__(message)
        self.what = what
        self.status = status  # the daemon's answer, None when there was none


class DaemonRejected(UsageError):
    """The daemon refused this request; the same request will be refused again."""


class DaemonClient:
    def __init__(self, cfg: DaemonConfig, transport: httpx.BaseTransport | None = None) -> None:
        import httpx

        if not cfg.token:
            raise ConfigError(
                "no daemon token: set STORYBOARD_DAEMON_TOKEN (the value the GPU daemon uses)"
            )
        self.url = cfg.url.rstrip("/")
        self.status_timeout = cfg.connect_timeout
        self._max_batch: tuple[float, int] | None = None
        self._http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {cfg.token}", "User-Agent": "storyboard-worker"},
            timeout=httpx.Timeout(cfg.read_timeout, connect=cfg.connect_timeout),
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    @property
    def where(self) -> str:
        """The daemon as error messages name it."""
        return f"the GPU daemon at {redact_url(self.url)}"

    def status(self) -> DaemonStatus:
        return DaemonStatus.model_validate(self._call("GET", "/v1/status", None, None))

    def plan(self, req: PlanRequest, on_progress: OnProgress | None = None) -> PlanResponse:
        """Planning is a function of the request: a 500 (the daemon's own error) would come
        back the same, so it is DaemonRejected, not retried; other 5xx, as everywhere, are
        retried (503: a planner service that may heal)."""
        try:
            return PlanResponse.model_validate(self._call("POST", "/v1/plan", req, on_progress))
        except DaemonUnavailable as exc:
            if exc.status == 500:
                raise DaemonRejected(str(exc)) from None
            raise

    def render(self, req: RenderRequest, on_progress: OnProgress | None = None) -> RenderResponse:
        return RenderResponse.model_validate(self._call("POST", "/v1/render", req, on_progress))

    def render_many(self, req: RendersRequest, on_progress: OnProgress | None = None,
                    on_shot: OnShot | None = None) -> RendersResponse:
        """Several shots in one request; on_shot gets each shot's outcome as it finishes."""
        return RendersResponse.model_validate(
            self._call("POST", "/v1/renders", req, on_progress, on_shot))

    def max_batch(self) -> int:
        """How many same-settings shots the daemon renders in one call (its status, asked at
        most every STATUS_TTL_S). While the daemon does not answer quickly, the last answer
        (1 before any), kept for another STATUS_TTL_S: jobs that start during an outage keep
        their windows without each waiting for a status, and the render itself then fails or
        waits as it would have anyway."""
        moment = time.monotonic()
        if self._max_batch is None or moment - self._max_batch[0] > STATUS_TTL_S:
            try:
                answer = self._call("GET", "/v1/status", None, None, timeout=self.status_timeout)
                known = DaemonStatus.model_validate(answer).max_batch
            except DaemonUnavailable:
                known = self._max_batch[1] if self._max_batch else 1
            self._max_batch = (moment, known)
        return self._max_batch[1]

    def _call(
        self, method: str, path: str, body: BaseModel | None, on_progress: OnProgress | None,
        on_shot: OnShot | None = None, timeout: float | None = None,
    ) -> dict[str, Any]:
        import httpx

        where = self.where
        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        if body is not None:
            # Null fields left out (every one defaults to null): a screenplay's are many.
            kwargs["content"] = body.model_dump_json(exclude_none=True)
            kwargs["headers"] = {"Content-Type": "application/json", "Accept": NDJSON}
        try:
            with self._http.stream(method, path, **kwargs) as resp:
                if resp.status_code != 200:
                    resp.read()
                    raise failure(resp.status_code, _detail(resp), where)
                if resp.headers.get("content-type", "").startswith(NDJSON):
                    lines = resp.iter_lines()
                    result = read_stream(lines, on_progress, where, on_shot)
                    # Read to the stream's end: a response closed half-read takes its
                    # connection with it, and every call would open a new one (through the
                    # tunnel, a new stcp connection each time).
                    for _ in lines:
                        pass
                    return result
                resp.read()
                return resp.json()
        except httpx.TimeoutException as exc:
            raise DaemonUnavailable(f"{where} did not answer in time ({_kind(exc)})",
                                    "daemon unreachable") from None
        except httpx.TransportError as exc:
            raise DaemonUnavailable(f"cannot reach {where}: {_reason(exc)}",
                                    "daemon unreachable") from None


def read_stream(
    lines: Iterator[str], on_progress: OnProgress | None, where: str,
    on_shot: OnShot | None = None,
) -> dict[str, Any]:
    """Progress (and shot) events until one result or error event (the wire module's
    "Streaming")."""
    from pydantic import ValidationError

    for line in lines:
        if not line.strip():
            continue
        try:
            # Parsed and checked in one pass by pydantic-core: a window's stream is a dozen
            # lines a shot, and json.loads then model_validate cost twice as much.
            event = _events().validate_json(line)
        except ValidationError:
            event = _slow_event(line, where)
            if event is None:
                continue
        if isinstance(event, ProgressEvent):
            if on_progress is not None:
                on_progress(event)
        elif isinstance(event, ShotEvent):
            if on_shot is not None:
                on_shot(event.outcome)
        elif isinstance(event, ResultEvent):
            return event.result
        else:
            raise failure(event.status, event.error, where)
    raise DaemonUnavailable(f"{where} closed the stream before sending a result")


@functools.cache
def _events() -> TypeAdapter[StreamEvent]:
    from pydantic import TypeAdapter

    return TypeAdapter(StreamEvent)


def _slow_event(line: str, where: str) -> BaseModel | None:
    """A line the fast path refused: malformed JSON (the daemon is unwell), an event of a
    kind this worker does not know (skipped), or a known event with invalid fields (its
    ValidationError)."""
    try:
        data = json.loads(line)
    except ValueError:
        raise DaemonUnavailable(f"{where} sent a malformed progress line") from None
    kind = EVENT_KINDS.get(data.get("event")) if isinstance(data, dict) else None
    return None if kind is None else kind.model_validate(data)


def failure(status: int, detail: str, where: str) -> Exception:
    """An HTTP status from the daemon as a retryable or a permanent error."""
    if status == 401:
        return DaemonRejected(
            f"{where} refused the token (401): STORYBOARD_DAEMON_TOKEN must match on both sides"
        )
    message = f"{where} answered {status}: {detail}"
    if status >= 500 or status in (408, 429):
        planner = detail.startswith(PLANNER_UNREACHABLE)
        return DaemonUnavailable(message, PLANNER_UNREACHABLE if planner else
                                 "daemon unavailable", status)
    return DaemonRejected(message)


def _detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except ValueError:
        detail = None
    text = str(detail) if detail else resp.text.strip() or resp.reason_phrase
    return text if len(text) <= 300 else text[:299] + "…"


def _kind(exc: Exception) -> str:
    names = {"ConnectTimeout": "connect timeout", "ReadTimeout": "read timeout",
             "WriteTimeout": "write timeout", "PoolTimeout": "pool timeout"}
    return names.get(type(exc).__name__, type(exc).__name__)


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    if "Connection refused" in text:
        return "connection refused"
    return text or type(exc).__name__
