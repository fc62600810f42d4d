"""The workers registered in Redis, wherever they run, and the daemon each one renders on.

Every `storyboard worker` writes its daemon URL into its RQ worker record and keeps a liveness
key; a worker counts as live while that key exists (a SIGKILLed one stays registered with RQ
for minutes). `storyboard ps` lists them, `storyboard doctor` checks each daemon they use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from storyboard_cli.stack import frp
from storyboard_contract.config import Config


@dataclass
class WorkerInfo:
    name: str
    hostname: str
    pid: int | None
    state: str  # RQ's: idle, busy, ...
    queues: list[str]
    daemon_url: str  # "" for a worker of an older version
    box: str  # the [frp] boxes name of its daemon, "" when there is none or it is unknown

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def live_workers(cfg: Config, timeout: float = 3.0) -> list[WorkerInfo]:
    """Live workers on this system's queues. Raises redis errors when Redis does not answer."""
    import redis
    from rq import Worker

    from storyboard_cli.tasks.worker import DAEMON_FIELD, alive_key

    client = redis.Redis.from_url(cfg.redis.url, socket_connect_timeout=timeout,
                                  socket_timeout=timeout)
    try:
        queues = {cfg.queue.plan_queue, cfg.queue.render_queue}
        found = []
        for w in Worker.all(connection=client):
            if not (queues & set(w.queue_names()) and client.exists(alive_key(w.name))):
                continue
            url = (client.hget(w.key, DAEMON_FIELD) or b"").decode()
            box = frp.box_of_url(cfg, url) if url else None
            state = w.get_state()
            found.append(WorkerInfo(w.name, w.hostname or "", w.pid,
                                    str(getattr(state, "value", state)),
                                    sorted(queues & set(w.queue_names())), url,
                                    box.name if box else ""))
        return sorted(found, key=lambda w: (w.daemon_url, w.name))
    finally:
        client.close()


def daemon_urls(cfg: Config, workers: list[WorkerInfo]) -> list[str]:
    """Every daemon the configuration names (each box's tunnel end, [daemon] url) and every one
    a live worker uses, each once."""
    urls = [b.url(cfg.frp.mode) for b in frp.boxes(cfg)] + [cfg.daemon.url]
    urls += [w.daemon_url for w in workers if w.daemon_url]
    return list(dict.fromkeys(u.rstrip("/") for u in urls))
