"""`storyboard doctor`: is every part of the system reachable and configured consistently?

Each check runs on its own, with short timeouts, so one report shows everything that is wrong:

  config    the file parses; the secrets both sides share are set; [daemon] url is the tunnel's
  store     the SQLite store opens (migrations applied)
  redis     PING
  workers   at least one RQ worker listens on this system's queues
  frps      the FRP server accepts connections
  frpc      the GPU side's proxy is `running` in frpc's admin API (when frpc runs on this
            machine; a visitor's status shows nothing, so the host side is checked end to end)
  visitor   the stcp visitor's local port is open (stcp mode)
  daemon    through the tunnel: /healthz answers, /v1/status accepts the token, and refuses a
            request without one
  bucket    write an object, read it back, presign a GET and fetch it, delete it

A failure carries a hint: the one thing to do about it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from storyboard_cli.config import Config, redact_url
from storyboard_cli.errors import EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, StoryboardError
from storyboard_cli.stack import frp, services

TIMEOUT = 3.0
PLACEHOLDERS = ("change-me", "and-me")  # the values .env.example ships with


@dataclass
class Check:
    name: str
    status: str  # ok | fail | warn | skip
    detail: str = ""
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Failed(Exception):
    """A check failed: message for the detail column, hint for the fix column."""

    def __init__(self, detail: str, hint: str = "") -> None:
        super().__init__(detail)
        self.hint = hint


class Skipped(Exception):
    pass


def exit_code(checks: list[Check]) -> int:
    if any(c.status == "fail" and c.name == "config" for c in checks):
        return EXIT_USAGE
    return EXIT_UNAVAILABLE if any(c.status == "fail" for c in checks) else EXIT_OK


def config_failure(exc: StoryboardError) -> list[Check]:
    return [Check("config", "fail", str(exc), "fix storyboard.toml / .env (see `storyboard init`)")]


class Doctor:
    def __init__(self, cfg: Config, local_frpc: bool | None = None) -> None:
        """local_frpc: whether the GPU side's frpc runs on this machine (`storyboard up`);
        by default, whether this config's stack has started one."""
        self.cfg = cfg
        self.local_frpc = (cfg.state_dir / "run" / "frpc.json").is_file() \
            if local_frpc is None else local_frpc
        self.redis_ok = False

    def run(self, on_check: Callable[[Check], None] | None = None) -> list[Check]:
        steps: list[tuple[str, Callable[[], str]]] = [
            ("config", self.check_config),
            ("store", self.check_store),
            ("redis", self.check_redis),
            ("workers", self.check_workers),
            ("frps", self.check_frps),
            ("frpc", self.check_frpc),
        ]
        if self.cfg.frp.mode == "stcp":
            steps.append(("visitor", self.check_visitor))
        steps += [("daemon", self.check_daemon), ("bucket", self.check_bucket)]
        checks = []
        for name, step in steps:
            check = _run(name, step)
            checks.append(check)
            if on_check:
                on_check(check)
        return checks

    # -- checks: each returns its detail, or raises Failed / Skipped --

    def check_config(self) -> str:
        cfg = self.cfg
        missing = [name for name, value in (
            ("STORYBOARD_DAEMON_TOKEN", cfg.daemon.token),
            (frp.TOKEN_ENV, cfg.frp.token),
            *([(frp.SECRET_KEY_ENV, cfg.frp.secret_key)] if cfg.frp.mode == "stcp" else []),
        ) if not value]
        if missing:
            raise Failed(f"{', '.join(missing)} not set",
                         "set them in .env (the same values on the GPU box); "
                         "`storyboard up` generates them for a local stack")
        weak = [name for name, value in (
            ("STORYBOARD_DAEMON_TOKEN", cfg.daemon.token), (frp.TOKEN_ENV, cfg.frp.token),
            (frp.SECRET_KEY_ENV, cfg.frp.secret_key),
            (frp.ADMIN_PASSWORD_ENV, cfg.frp.admin_password),
        ) if value.startswith(PLACEHOLDERS)]
        if weak:
            raise Failed(f"{', '.join(weak)} still hold the .env.example placeholder",
                         "replace them with random values: openssl rand -hex 24")
        source = str(cfg.source) if cfg.source else "built-in defaults"
        warning = frp.url_warning(cfg)
        if warning:
            raise _Warn(f"{source}; {warning}")
        return f"{source}; {cfg.frp.mode} tunnel, daemon at {redact_url(cfg.daemon.url)}"

    def check_store(self) -> str:
        from storyboard_cli.store import Store

        try:
            store = Store(self.cfg.store_path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            raise Failed(f"{self.cfg.store_path}: {exc}",
                         "check [store] path: its folder must be writable") from None
        try:
            count = store.db.execute("select count(*) from projects").fetchone()[0]
        finally:
            store.close()
        return f"{self.cfg.store_path} ({count} projects)"

    def check_redis(self) -> str:
        url = self.cfg.redis.url
        if not _redis_ping(url):
            raise Failed(f"no answer from {redact_url(url)}",
                         "start Redis (`storyboard up` runs one) or fix [redis] url / "
                         "STORYBOARD_REDIS_URL")
        self.redis_ok = True
        return redact_url(url)

    def check_workers(self) -> str:
        if not self.redis_ok:
            raise Skipped("needs Redis")
        import redis
        from rq import Worker

        from storyboard_cli.tasks.worker import alive_key

        client = redis.Redis.from_url(self.cfg.redis.url, socket_connect_timeout=TIMEOUT,
                                      socket_timeout=TIMEOUT)
        try:
            queues = {self.cfg.queue.plan_queue, self.cfg.queue.render_queue}
            # A worker killed without a goodbye stays registered with RQ for minutes; its
            # liveness key expires within three heartbeats.
            workers = [w for w in Worker.all(connection=client)
                       if queues & set(w.queue_names()) and client.exists(alive_key(w.name))]
        finally:
            client.close()
        if not workers:
            raise Failed("no worker listens on " + ", ".join(sorted(queues)),
                         "start workers: `storyboard up`, or `storyboard worker` on the host")
        return f"{len(workers)} worker(s)"

    def check_frps(self) -> str:
        addr, port = self.cfg.frp.server_addr, self.cfg.frp.server_port
        if services.port_open(port, addr, timeout=TIMEOUT):
            return f"{addr}:{port}"
        # On the host itself its public address may not loop back (no hairpin NAT).
        if addr != "127.0.0.1" and services.port_open(port, timeout=TIMEOUT):
            return f"127.0.0.1:{port} (not reachable here as {addr}; check from the GPU box)"
        raise Failed(f"nothing accepts connections at {addr}:{port}",
                     "start frps on the host: `storyboard up`, or frp/start_frps.sh")

    def check_frpc(self) -> str:
        import httpx

        try:
            proxy = frp.proxy_status(self.cfg, timeout=TIMEOUT)
        except httpx.TransportError:
            if not self.local_frpc:
                raise Skipped("frpc runs on the GPU box: checked end to end (daemon)") from None
            raise Failed(f"frpc admin API at {frp.admin_url(self.cfg)} does not answer",
                         "frpc is not running: `storyboard up` (or frp/start_frpc.sh "
                         "on the GPU box)") from None
        except PermissionError:
            raise Failed("frpc admin API refused the user/password",
                         f"set [frp] admin_user / {frp.ADMIN_PASSWORD_ENV} as frpc was "
                         "started with") from None
        except httpx.HTTPError as exc:
            raise Failed(f"frpc admin API: {exc}") from None
        name = frp.registered_name(self.cfg)
        if proxy is None:
            raise Failed(f"frpc has no proxy {name} registered",
                         "frpc is not logged in to frps: check that frps runs, [frp] "
                         f"server_addr/server_port and {frp.TOKEN_ENV} on both sides (frpc's "
                         "log says which)")
        state = proxy.get("status", "?")
        if state == "check failed":
            raise Failed(f"proxy {name}: health check of the daemon fails",
                         "the GPU daemon is down: start gpu-daemon (`storyboard up`)")
        if state != "running":
            err = proxy.get("err") or ""
            raise Failed(f"proxy {name}: {state}" + (f" ({err})" if err else ""),
                         "frpc is not logged in to frps: check frps, [frp] server_addr/"
                         f"server_port and {frp.TOKEN_ENV} on both sides")
        return f"proxy {name} running"

    def check_visitor(self) -> str:
        port = self.cfg.frp.visitor_port
        if not services.port_open(port, timeout=TIMEOUT):
            raise Failed(f"nothing listens on 127.0.0.1:{port}",
                         "start the stcp visitor: `storyboard up`, or frp/start_frpc.sh visitor")
        return f"127.0.0.1:{port}"

    def check_daemon(self) -> str:
        import httpx

        url = frp.tunnel_url(self.cfg)
        token = self.cfg.daemon.token
        try:
            with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
                health = http.get(frp.HEALTH_PATH)
                anonymous = http.get("/v1/status")
                authed = http.get("/v1/status", headers={"Authorization": f"Bearer {token}"}) \
                    if token else None
        except httpx.TransportError as exc:
            raise Failed(f"{url}: {_reason(exc)}",
                         "the tunnel does not reach a live daemon: check frpc and gpu-daemon "
                         "on the GPU box (`storyboard up` locally)") from None
        if health.status_code != 200:
            raise Failed(f"{url}{frp.HEALTH_PATH} answered {health.status_code}",
                         "something other than gpu-daemon is behind the tunnel: check "
                         "[daemon] port on the GPU box")
        if authed is None:
            env_file = self.cfg.base_dir / ".env"
            raise Failed("no daemon token: STORYBOARD_DAEMON_TOKEN is not set, so the daemon's "
                         "answer cannot be checked",
                         f"set STORYBOARD_DAEMON_TOKEN (the GPU daemon's value) in {env_file} "
                         "or the environment; `storyboard up` generates one for a local stack")
        if authed.status_code == 401:
            raise Failed("the daemon refused our token",
                         "STORYBOARD_DAEMON_TOKEN differs between host and GPU box")
        if authed.status_code != 200:
            raise Failed(f"/v1/status answered {authed.status_code}", "see the daemon's log")
        if anonymous.status_code != 401:
            raise Failed("the daemon answers without a token",
                         "restart gpu-daemon without --insecure-no-token")
        from gpu_daemon.schemas import DaemonStatus

        status = DaemonStatus.model_validate(authed.json())
        return (f"{url}: token accepted, planner {status.planner}, images "
                f"{status.image_backend} on {status.device}")

    def check_bucket(self) -> str:
        import httpx

        from storyboard_cli.s3 import make_client, presign_get

        s3 = self.cfg.s3
        if not (s3.access_key and s3.secret_key):
            raise Failed("no S3 credentials",
                         "set ACCESS_KEY and SECRET_KEY in .env (`storyboard up` generates "
                         "them for the local SeaweedFS)")
        client = make_client(s3.endpoint, s3.access_key, s3.secret_key, s3.region,
                             s3.addressing_style, connect_timeout=TIMEOUT,
                             read_timeout=TIMEOUT, max_attempts=1)
        key = f"{s3.prefix.strip('/')}/_doctor/{secrets.token_hex(8)}.txt"
        body = f"storyboard doctor {time.time()}".encode()
        where = f"{redact_url(s3.endpoint) or 'AWS S3'} bucket {s3.bucket}"
        try:
            client.put_object(Bucket=s3.bucket, Key=key, Body=body, ContentType="text/plain")
            try:
                got = client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()
                if got != body:
                    raise Failed(f"{where}: read back different bytes", "check the S3 endpoint")
                url, _ = presign_get(client, s3.bucket, key, 60)
                fetched = httpx.get(url, timeout=TIMEOUT)
                if fetched.status_code != 200 or fetched.content != body:
                    raise Failed(f"{where}: presigned GET answered {fetched.status_code}",
                                 "presigned links fail: check [s3] addressing_style (TOS and "
                                 "AWS need virtual) and region")
            finally:
                client.delete_object(Bucket=s3.bucket, Key=key)
        except Failed:
            raise
        except Exception as exc:  # noqa: BLE001 - botocore/httpx errors, sorted below
            raise Failed(f"{where}: {_reason(exc)}", _bucket_hint(exc)) from None
        return f"{where}: write, read back, presigned fetch ok"


class _Warn(Exception):
    pass


def _run(name: str, step: Callable[[], str]) -> Check:
    try:
        return Check(name, "ok", step())
    except Failed as exc:
        return Check(name, "fail", str(exc), exc.hint)
    except _Warn as exc:
        return Check(name, "warn", str(exc))
    except Skipped as exc:
        return Check(name, "skip", str(exc))
    except Exception as exc:  # noqa: BLE001 - an unexpected error is a failed check
        return Check(name, "fail", f"{type(exc).__name__}: {exc}")


def _redis_ping(url: str) -> bool:
    from storyboard_cli.stack.supervisor import redis_answers

    return redis_answers(url, timeout=TIMEOUT)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]


def _bucket_hint(exc: Exception) -> str:
    code = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code", "")
    if code == "NoSuchBucket":
        return "create the bucket or set [s3] bucket / TOS_BUCKET"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
        return "check ACCESS_KEY / SECRET_KEY (and that they may write to the bucket)"
    return ("the S3 endpoint does not answer: start it (`storyboard up` runs SeaweedFS) or "
            "check ENDPOINT / [s3] endpoint")

