"""How a worker process rides out a Redis outage of any length.

Every Redis command of a worker (RQ's bookkeeping around each job, the jobs' own enqueues,
RQ's command channel) goes through one WaitForRedis policy: on a connection error or a
timeout it reconnects with capped exponential backoff for as long as it takes. A job that
ends while Redis is down is recorded when Redis is back, and the worker carries on. With
plain bounded retries RQ gives up, and its work loop quits mid-job ("found an unhandled
exception, quitting..."), leaving the task running with nobody to finish it.

RedisOutage keeps one account of an outage for the whole process, however many connections
and threads notice it: one warning once Redis has been unreachable for WARN_AFTER_S, one
line when it is back.

Waiting is wrong only when the worker is leaving: after `give_up()` (teardown, a cold
shutdown) commands fail after a few quick tries, so stopping never hangs on a dead Redis.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from redis.backoff import ExponentialBackoff
from redis.retry import Retry

log = logging.getLogger("storyboard.worker")

T = TypeVar("T")

# Reconnect attempts: 0.2 s, 0.4 s, ... doubling up to CAP_S apart, so a worker is back at
# work at most CAP_S after Redis is.
BASE_S = 0.1
CAP_S = 5.0
# A failure that the next attempt cures (a connection Redis closed while idle) is no outage.
WARN_AFTER_S = 1.0
# Attempts left once the worker is leaving, about a second in all.
LEAVING_ATTEMPTS = 3


class RedisOutage:
    """One process's view of whether Redis is reachable; thread-safe."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._lock = threading.Lock()
        self._since: float | None = None
        self._warned = False
        self._last_failure = float("-inf")

    def failed(self, exc: BaseException) -> None:
        """A command failed to reach Redis."""
        with self._lock:
            moment = time.monotonic()
            self._last_failure = moment
            if self._since is None:
                self._since = moment
            elif not self._warned and moment - self._since >= WARN_AFTER_S:
                self._warned = True
                log.warning("Redis at %s is unreachable (%s); the worker waits for it, "
                            "retrying at most %g s apart, and carries on when it is back",
                            self.where, _reason(exc), CAP_S)

    def reached(self) -> None:
        """A command reached Redis."""
        with self._lock:
            if self._since is None:
                return
            if self._warned:
                log.warning("Redis at %s is back after %.0f s; carrying on", self.where,
                            time.monotonic() - self._since)
            self._since = None
            self._warned = False

    def quiet_for(self, seconds: float) -> bool:
        """Whether no command has failed to reach Redis for this long."""
        with self._lock:
            return time.monotonic() - self._last_failure >= seconds


class WaitForRedis(Retry):
    """redis-py's retry policy, waiting for Redis without a limit (module docstring)."""

    def __init__(self, outage: RedisOutage) -> None:
        super().__init__(ExponentialBackoff(cap=CAP_S, base=BASE_S), retries=-1)
        self.outage = outage
        self._patient = True

    def __deepcopy__(self, memo: dict[int, Any]) -> WaitForRedis:
        # redis-py copies the policy into every connection; they must share one: giving up
        # applies to all of them, and the outage is accounted for once.
        return self

    def give_up(self) -> None:
        """From now on fail after LEAVING_ATTEMPTS: the worker is leaving."""
        self._patient = False

    @contextlib.contextmanager
    def briefly(self) -> Iterator[None]:
        """Commands inside fail after LEAVING_ATTEMPTS, e.g. in a signal handler that must
        not block the job it interrupted."""
        patient, self._patient = self._patient, False
        try:
            yield
        finally:
            self._patient = patient

    def call_with_retry(
        self,
        do: Callable[[], T],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        self._backoff.reset()
        failures = 0
        while True:
            try:
                result = do()
            except self._supported_errors as error:
                if is_retryable and not is_retryable(error):
                    raise
                failures += 1
                if with_failure_count:
                    fail(error, failures)
                else:
                    fail(error)
                if not self._patient and failures >= LEAVING_ATTEMPTS:
                    raise
                self.outage.failed(error)
                time.sleep(self._backoff.compute(failures))
            else:
                if failures:
                    self.outage.reached()
                return result


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return "connection refused" if "refused" in text else text or type(exc).__name__
