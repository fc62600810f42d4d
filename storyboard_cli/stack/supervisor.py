"""`storyboard up` / `down` / `ps`: the whole system as supervised processes on one machine.

Parts, in start order (each waits for the parts it needs to be healthy):

  redis     redis-server (AOF), unless the configured Redis answers (then "external")
  s3        SeaweedFS's S3 gateway with generated credentials, bucket created; "external" when
            another S3 endpoint is configured
  daemon    gpu-daemon (sketch backend unless [images] model is set)
  frps      the FRP server                                     } the tunnel, rendered by
  frpc      the GPU side's frpc, publishing the daemon         } storyboard_cli.stack.frp from the
  visitor   the host side's stcp visitor (stcp mode only)      } same Config
  serve     `storyboard serve`, the HTTP API and web page on [server] host:port ([stack]
            serve = true), with the generated STORYBOARD_API_TOKEN
  worker-N  `storyboard worker` processes, given STORYBOARD_DAEMON_URL = the tunnel's host
            end, so they reach the daemon only through frps/frpc

Every process runs in its own session with its output in <state_dir>/logs/<part>.log and a
record in <state_dir>/run/<part>.json (pid, argv, the process's start time, and a digest of
each configuration section the part reads). `up` restarts a running part whose sections (or
command line) changed since it started, and says which: an edited [planner] reaches the
daemon. A record only counts while its pid still is that process (same start time), so
`down` never signals a stranger that reused the pid, and `up` never starts a part that is
already running.

Secrets the stack needs and does not find (daemon token, frp token/secret/admin password, the
API token of `serve`) are
generated once into the `.env` beside the config. Settings that only hold while the stack runs
(the local SeaweedFS's endpoint and keys, the stack's own Redis) go into a marked block of that
`.env`, which `down` removes: none of them outlives the stack unannounced.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storyboard_cli.stack import frp, processes
from storyboard_contract.config import (
    STACK_BLOCK_BEGIN,
    STACK_BLOCK_END,
    Config,
    dotenv_values_of,
    find_config,
    load_config,
    split_stack_block,
)

API_TOKEN_ENV = "STORYBOARD_API_TOKEN"

FIXED_PARTS = ("redis", "s3", "daemon", "frps", "frpc", "visitor", "serve")
HEALTHY = ("started", "restarted", "running", "external")
# The storyboard.toml sections each part reads (the environment's overrides included, since
# they are applied to the Config): a change in one restarts the part at the next `up`.
HOST_SECTIONS = ("store", "redis", "queue", "daemon", "s3", "images", "limits", "server")
PART_SECTIONS = {
    "daemon": ("daemon", "s3", "planner", "images", "limits"),
    "frps": ("frp",), "frpc": ("frp", "daemon"), "visitor": ("frp", "daemon"),
    "serve": HOST_SECTIONS, "worker": HOST_SECTIONS,
}
LOG_TAIL_LINES = 15

# Secrets the stack generates into .env when missing: variable -> generator.
GENERATED_SECRETS: dict[str, Callable[[], str]] = {
    "STORYBOARD_DAEMON_TOKEN": lambda: secrets.token_urlsafe(32),
    frp.TOKEN_ENV: lambda: secrets.token_urlsafe(32),
    frp.SECRET_KEY_ENV: lambda: secrets.token_urlsafe(32),
    frp.ADMIN_PASSWORD_ENV: lambda: secrets.token_urlsafe(18),
    API_TOKEN_ENV: lambda: secrets.token_urlsafe(32),
}


# --- .env -----------------------------------------------------------------------------------


def env_file(cfg: Config) -> Path:
    return cfg.base_dir / ".env"


def read_env_files(config_path: Path | None) -> dict[str, str]:
    """What load_config would take from .env files (beside the config, then the cwd)."""
    return {key: value for key, (value, _) in dotenv_values_of(config_path).items()}


def _write_private(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    tmp.replace(path)


def set_stack_env(path: Path, values: Mapping[str, str]) -> None:
    """Put settings that belong to the local stack (its S3 endpoint and keys, its Redis) into
    .env, in a marked block that `storyboard down` removes, so none outlives the stack."""
    outside, inside = split_stack_block(path)
    inside.update(values)
    while outside and not outside[-1].strip():
        outside.pop()
    block = [STACK_BLOCK_BEGIN, *(f"{k}={v}" for k, v in inside.items()), STACK_BLOCK_END]
    _write_private(path, [*outside, *([""] if outside else []), *block])


def clear_stack_env(path: Path) -> list[str]:
    """Remove the local stack's block from .env; returns the variables it held."""
    outside, inside = split_stack_block(path)
    if inside:
        _write_private(path, outside)
    return list(inside)


def append_env(path: Path, values: Mapping[str, str], why: str) -> None:
    """Add variables to a .env file (created private), with a comment saying where from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    existed = path.exists()
    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with open(path, "a", encoding="utf-8") as f:
        if not existed:
            os.chmod(path, 0o600)
        f.write(f"\n# {why} ({stamp})\n")
        for key, value in values.items():
            f.write(f"{key}={value}\n")


def local_s3_endpoint(cfg: Config) -> str:
    return f"http://127.0.0.1:{cfg.stack.s3_port}"


def uses_local_s3(cfg: Config) -> bool:
    """The stack runs SeaweedFS unless another endpoint (or AWS, with credentials) is set."""
    endpoint = cfg.s3.endpoint.rstrip("/")
    if not endpoint:
        return not cfg.s3.access_key
    return endpoint in (local_s3_endpoint(cfg), f"http://localhost:{cfg.stack.s3_port}")


def prepare(
    config_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    generate: bool = True,
) -> tuple[Config, dict[str, str], list[str]]:
    """The stack's Config and environment (real env over .env); with generate, missing
    secrets and local-S3 settings are written to .env first. Returns notes for the user.

    The environment is passed around explicitly rather than loaded into os.environ, so one
    process can handle several stacks (tests) without one's .env leaking into another.
    """
    path = find_config(config_path)
    base_env = dict(os.environ if environ is None else environ)
    env = {**read_env_files(path), **base_env}
    cfg = load_config(path, environ=env)
    notes: list[str] = []
    if generate:
        new = {name: make() for name, make in GENERATED_SECRETS.items() if not env.get(name)}
        local: dict[str, str] = {}
        if uses_local_s3(cfg):
            if not cfg.s3.endpoint:
                local["ENDPOINT"] = local_s3_endpoint(cfg)
            if not (cfg.s3.access_key and cfg.s3.secret_key):
                local["ACCESS_KEY"] = "sb" + secrets.token_hex(8)
                local["SECRET_KEY"] = secrets.token_urlsafe(30)
        target = env_file(cfg)
        if new:
            append_env(target, new, "generated by `storyboard up` (shared secrets; kept by "
                                    "`storyboard down`)")
            notes.append(f"generated {', '.join(sorted(new))} into {target}")
        if local:
            set_stack_env(target, local)
            notes.append(f"set {', '.join(local)} for the local SeaweedFS in {target}, "
                         "above any [s3] settings of storyboard.toml until `storyboard down`")
        if new or local:
            env = {**new, **local, **env}
            cfg = load_config(path, environ=env)
    return cfg, env, notes


# --- records --------------------------------------------------------------------------------


def process_identity(pid: int) -> str | None:
    """Something that changes when a pid is reused: the process's start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return "proc:" + stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        pass
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True,
                             text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"ps:{out}" if out else None


@dataclass
class ProcessRecord:
    """What a pid file holds about one started process."""

    name: str
    pid: int
    identity: str
    argv: list[str]
    log: str
    address: str
    started_at: str
    # Section name (or "command line") -> digest, as the part was started (config_digests).
    config: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        return processes.pid_alive(self.pid) and process_identity(self.pid) == self.identity


@dataclass
class PartStatus:
    name: str
    state: str  # started|running|external|failed|skipped|stopped|not running|unhealthy
    pid: int | None = None
    address: str = ""
    detail: str = ""
    log: str = ""
    log_tail: str = field(default="", repr=False)

    @property
    def ok(self) -> bool:
        return self.state in HEALTHY

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Part:
    name: str
    argv: list[str]
    address: str
    ready: Callable[[], bool]
    timeout: float
    needs: tuple[str, ...] = ()
    # Started once these have settled, healthy or not: only to spread the start-up's CPU.
    after: tuple[str, ...] = ()
    env: dict[str, str] | None = None
    after_ready: Callable[[], None] | None = None
    # Set instead of argv when the program is not installed: reported when it must start.
    missing: str = ""
    # What its health check asks, for `ps` when only that check fails.
    check: str = ""
    # Its command line differs at each `up` (free ports picked anew): not a change.
    argv_varies: bool = False


def _argv(make: Callable[[], list[str]]) -> tuple[list[str], str]:
    try:
        return make(), ""
    except (FileNotFoundError, frp.FrpError) as exc:
        return [], str(exc)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def console_script(name: str, module: str) -> list[str]:
    """An installed entry point of this environment, else the module run by this Python."""
    script = processes.find_binary(name)
    return [script] if script else [sys.executable, "-m", module]


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.exceptions.RedisError, OSError):
        return False


def serve_url(cfg: Config) -> str:
    """Where the stack's `storyboard serve` answers (on this machine: a wildcard host is
    reached through loopback)."""
    host = cfg.server.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return f"http://{f'[{host}]' if ':' in host else host}:{cfg.server.port}"


def _is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


class Stack:
    """The local stack described by one Config and environment (see `prepare`)."""

    def __init__(self, cfg: Config, env: Mapping[str, str]) -> None:
        self.cfg = copy.deepcopy(cfg)
        # Everything runs on this machine: the GPU side's frpc logs in to the local frps, and
        # the one local daemon is the only GPU box.
        self.cfg.frp.server_addr = "127.0.0.1"
        self.cfg.frp.boxes = []
        self.env = dict(env)
        self.dir = cfg.state_dir
        self.run_dir = self.dir / "run"
        self.log_dir = self.dir / "logs"
        self.frp_dir = self.dir / "frp"
        self.env_cleared: list[str] = []
        self.notes: list[str] = []  # what `up` changed that the user should know
        self.restarted: dict[str, str] = {}  # by `up`, because (the sections that changed)

    # -- records --

    def _record_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.json"

    def record(self, name: str) -> ProcessRecord | None:
        try:
            return ProcessRecord(**json.loads(self._record_path(name).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def records(self) -> list[ProcessRecord]:
        found = [r for p in sorted(self.run_dir.glob("*.json")) if (r := self.record(p.stem))]
        return sorted(found, key=lambda r: _order(r.name))

    def _save(self, rec: ProcessRecord) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        tmp = self._record_path(rec.name).with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec), indent=2))
        tmp.replace(self._record_path(rec.name))

    def _forget(self, name: str) -> None:
        self._record_path(name).unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One up/down at a time per state directory."""
        import fcntl

        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- what runs where --

    @property
    def daemon_local_url(self) -> str:
        return f"http://{frp.daemon_local_ip(self.cfg)}:{self.cfg.daemon.port}"

    @property
    def tunnel_url(self) -> str:
        return frp.tunnel_url(self.cfg)

    @property
    def serve_url(self) -> str:
        return serve_url(self.cfg)

    def redis_url(self) -> str:
        """The Redis the stack's workers use: ours if running, else the configured one."""
        rec = self.record("redis")
        return rec.address if rec and rec.alive() else self.cfg.redis.url

    def own_redis_url(self) -> str:
        db = urlsplit(self.cfg.redis.url).path.strip("/") or "0"
        return f"redis://127.0.0.1:{self.cfg.stack.redis_port}/{db}"

    def workers_wanted(self, workers: int | None) -> int:
        return self.cfg.stack.workers if workers is None else workers

    def parts(self, redis_url: str, workers: int) -> list[Part]:
        """The processes of the stack and how to tell each is healthy (no side effects)."""
        cfg, state = self.cfg, self.dir
        config_args = ["--config", str(cfg.source)] if cfg.source else []
        frp_env = {**self.env, **frp.frp_env(cfg)}
        redis_port = urlsplit(redis_url).port or 6379
        s3 = replace(processes.SeaweedPorts.pick(), s3=cfg.stack.s3_port)
        daemon_env = dict(self.env)
        if not cfg.images.model_table():
            daemon_env["STORYBOARD_IMAGES_BACKEND"] = "sketch"
        redis_argv = _argv(lambda: processes.redis_argv(redis_port, state / "redis"))
        s3_argv = _argv(lambda: processes.seaweed_argv(
            state / "s3" / "data", s3, state / "s3" / "identities.json"))
        frps_argv = _argv(lambda: [str(frp.frp_binary("frps")), "-c",
                                   str(self.frp_dir / frp.FRPS_FILE)])
        frpc_argv = _argv(lambda: [str(frp.frp_binary("frpc")), "-c",
                                   str(self.frp_dir / frp.GPU_FILE)])
        visitor_argv = _argv(lambda: [str(frp.frp_binary("frpc")), "-c",
                                      str(self.frp_dir / frp.VISITOR_FILE)])

        def tunnel_ready() -> bool:
            return processes.http_ok(f"{self.tunnel_url}{frp.HEALTH_PATH}", timeout=1.0)

        def frpc_ready() -> bool:
            proxy = frp.proxy_status(cfg, timeout=1.0)
            running = proxy is not None and proxy.get("status") == "running"
            return running and (cfg.frp.mode == "stcp" or tunnel_ready())

        parts = [
            Part("redis", redis_argv[0], redis_url, lambda: redis_answers(redis_url), 15,
                 missing=redis_argv[1], check="it does not answer PING"),
            Part("s3", s3_argv[0], local_s3_endpoint(cfg),
                 lambda: processes.http_ok(f"{local_s3_endpoint(cfg)}/healthz"), 30,
                 env={k: v for k, v in self.env.items() if not k.startswith("AWS_")},
                 after_ready=lambda: processes.ensure_bucket(
                     local_s3_endpoint(cfg), cfg.s3.access_key, cfg.s3.secret_key,
                     cfg.s3.bucket),
                 missing=s3_argv[1], check="its /healthz does not answer", argv_varies=True),
            Part("daemon", [*console_script("gpu-daemon", "gpu_daemon.cli"), "serve",
                            *config_args, "--host", frp.daemon_local_ip(cfg),
                            "--port", str(cfg.daemon.port)],
                 self.daemon_local_url,
                 lambda: processes.http_ok(f"{self.daemon_local_url}{frp.HEALTH_PATH}"), 90,
                 env=daemon_env, check=f"its {frp.HEALTH_PATH} does not answer"),
            Part("frps", frps_argv[0], f"127.0.0.1:{cfg.frp.server_port}",
                 lambda: processes.port_open(cfg.frp.server_port), 10, env=frp_env,
                 missing=frps_argv[1], check="its port refuses connections"),
            Part("frpc", frpc_argv[0],
                 frp.admin_url(cfg) if cfg.frp.mode == "stcp" else self.tunnel_url,
                 frpc_ready, 30, needs=("frps", "daemon"), env=frp_env, missing=frpc_argv[1],
                 check="its proxy is not running (its log says why)"),
        ]
        if cfg.frp.mode == "stcp":
            parts.append(Part("visitor", visitor_argv[0], self.tunnel_url, tunnel_ready, 30,
                              needs=("frpc",), env=frp_env, missing=visitor_argv[1],
                              check="the daemon does not answer through it"))
        if cfg.stack.serve:
            # Needs nothing (it answers 503 for what Redis or the bucket must do until they
            # are up), but starts after the daemon: on a small machine the two heaviest
            # start-ups (Python + FastAPI each) would slow each other, while the tunnel's
            # login, next, mostly waits.
            parts.append(Part(
                "serve", [*console_script("storyboard", "storyboard_cli.cli"), "serve",
                          *config_args, "--host", cfg.server.host,
                          "--port", str(cfg.server.port)],
                self.serve_url, lambda: processes.http_ok(f"{self.serve_url}/healthz"), 30,
                after=("daemon",), env={**self.env, "STORYBOARD_REDIS_URL": redis_url},
                check="its /healthz does not answer"))
        worker_env = {**self.env, "STORYBOARD_DAEMON_URL": self.tunnel_url,
                      "STORYBOARD_REDIS_URL": redis_url}
        for i in range(1, workers + 1):
            name = f"worker-{i}"
            parts.append(Part(
                name, [*console_script("storyboard", "storyboard_cli.cli"), "worker",
                       *config_args],
                f"→ {self.tunnel_url}",
                lambda name=name: self._worker_registered(name, redis_url), 30,
                # Not the tunnel: a job taken before it is up is retried like any outage, and
                # `up` returns only once every part, the tunnel included, is healthy.
                needs=("redis",), env=worker_env, check="it is not registered with RQ",
            ))
        return parts

    def _worker_registered(self, name: str, redis_url: str) -> bool:
        import redis
        from rq import Worker

        rec = self.record(name)
        if rec is None:
            return False
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return any(w.pid == rec.pid for w in Worker.all(connection=client))
        finally:
            client.close()

    # -- up --

    def up(
        self, workers: int | None = None, report: Callable[[PartStatus], None] | None = None
    ) -> list[PartStatus]:
        """Start what is not running, wait until every part is healthy; nothing starts twice."""
        with self._lock():
            return self._up(self.workers_wanted(workers), report or (lambda s: None))

    def _up(self, workers: int, report: Callable[[PartStatus], None]) -> list[PartStatus]:
        done: dict[str, PartStatus] = {}

        def finish(status: PartStatus) -> None:
            done[status.name] = status
            report(status)

        redis_url = self._choose_redis(finish)
        if not uses_local_s3(self.cfg):
            finish(PartStatus("s3", "external", address=self.cfg.s3.endpoint or "AWS S3"))
        self._render_frp()
        processes.write_s3_identities(self.dir / "s3" / "identities.json",
                                     self.cfg.s3.access_key, self.cfg.s3.secret_key)
        for d in ("redis", "s3/data", "logs"):
            (self.dir / d).mkdir(parents=True, exist_ok=True)
        self._init_store()

        pending: dict[str, tuple[Part, processes.Process | None, ProcessRecord]] = {}

        def settle(name: str) -> None:
            if name in done or name not in pending:
                return
            part, proc, rec = pending.pop(name)
            finish(self._await(part, proc, rec))

        for part in self.parts(redis_url, workers):
            if part.name in done:
                continue
            for need in (*part.needs, *part.after):
                settle(need)
            blocked = [n for n in part.needs if n in done and not done[n].ok]
            if blocked:
                finish(PartStatus(part.name, "skipped", address=part.address,
                                  detail=f"needs {', '.join(blocked)}"))
                continue
            rec = self.record(part.name)
            changed = self._changed(part, rec) if rec and rec.alive() else []
            if rec and rec.alive() and not changed:
                pending[part.name] = (part, None, rec)
                continue
            if changed and rec:
                self._stop(rec)
                self.notes.append(f"restarted {part.name}: {', '.join(changed)} changed since "
                                  "it started")
            try:
                proc, rec = self._start(part)
            except OSError as exc:
                finish(PartStatus(part.name, "failed", address=part.address, detail=str(exc)))
                continue
            if changed:
                self.restarted[part.name] = f"{', '.join(changed)} changed"
            pending[part.name] = (part, proc, rec)
        for name in list(pending):
            settle(name)
        return sorted(done.values(), key=lambda s: _order(s.name))

    def _choose_redis(self, finish: Callable[[PartStatus], None]) -> str:
        rec = self.record("redis")
        if rec and rec.alive():
            return rec.address
        configured = self.cfg.redis.url
        if redis_answers(configured):
            from storyboard_contract.config import redact_url

            finish(PartStatus("redis", "external", address=redact_url(configured)))
            return configured
        if not _is_loopback_url(configured):
            from storyboard_contract.config import redact_url

            finish(PartStatus("redis", "failed", address=redact_url(configured),
                              detail="the configured Redis does not answer"))
            return configured
        own = self.own_redis_url()
        if own != configured:
            # Later commands (generate, status, doctor) must find the stack's Redis too.
            set_stack_env(env_file(self.cfg), {"STORYBOARD_REDIS_URL": own})
            self.notes.append(f"set STORYBOARD_REDIS_URL={own} in {env_file(self.cfg)}, above "
                              "[redis] url of storyboard.toml until `storyboard down`")
            self.env["STORYBOARD_REDIS_URL"] = own
            self.cfg.redis.url = own
        return own

    def _init_store(self) -> None:
        """Create the store (and run its migrations) once, before several workers open it."""
        from storyboard_cli.store import Store

        Store(self.cfg.store_path).close()

    def _render_frp(self) -> None:
        self.frp_dir.mkdir(parents=True, exist_ok=True)
        for side in frp.SIDES:
            frp.write_configs(self.cfg, side, None, self.frp_dir)

    def _start(self, part: Part) -> tuple[processes.Process, ProcessRecord]:
        if part.missing:
            raise FileNotFoundError(part.missing)
        log = self.log_dir / f"{part.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"--- storyboard up: starting {part.name} at {stamp} ---\n")
        proc = processes.Process(part.name, part.argv, log, env=part.env or self.env,
                                cwd=self.cfg.base_dir).start()
        identity = process_identity(proc.pid) or ""
        rec = ProcessRecord(part.name, proc.pid, identity, part.argv, str(log), part.address,
                            stamp, self.config_digests(part))
        self._save(rec)
        return proc, rec

    def config_digests(self, part: Part) -> dict[str, str]:
        """What the part was started with: its command line and each section it reads."""
        sections = PART_SECTIONS.get(part.name.split("-")[0], ())
        argv = {} if part.argv_varies else {"command line": _digest(part.argv)}
        return {**argv,
                **{f"[{name}]": _digest(asdict(getattr(self.cfg, name))) for name in sections}}

    def _changed(self, part: Part, rec: ProcessRecord) -> list[str]:
        """What differs from when the running part started (nothing for a record written
        before parts had digests: unknown is not changed)."""
        now = self.config_digests(part)
        return [k for k, v in now.items() if rec.config and rec.config.get(k) != v]

    def _await(self, part: Part, proc: processes.Process | None, rec: ProcessRecord) -> PartStatus:
        state = "started" if proc is not None else "running"
        if part.name in self.restarted:
            state = "restarted"

        def exited() -> bool:
            return not (proc.alive() if proc is not None else rec.alive())

        ok = processes.wait_until(lambda: exited() or part.ready(), part.timeout, interval=0.05)
        ok = ok and not exited()
        if ok and part.after_ready is not None:
            try:
                part.after_ready()
            except Exception as exc:  # noqa: BLE001 - reported with the part's log
                return self._failed(part, proc, rec, f"after start: {exc}")
        if ok:
            return PartStatus(part.name, state, rec.pid, part.address,
                              self.restarted.get(part.name, ""), log=rec.log)
        if proc is None:
            detail = "exited" if exited() else f"not healthy after {part.timeout:g} s"
            return PartStatus(part.name, "unhealthy", rec.pid, part.address, detail, rec.log,
                              _tail(Path(rec.log)))
        why = (f"exited with code {proc.popen.returncode}" if exited() and proc.popen
               else f"not healthy after {part.timeout:g} s")
        return self._failed(part, proc, rec, why)

    def _failed(self, part: Part, proc: processes.Process | None, rec: ProcessRecord,
                detail: str) -> PartStatus:
        if proc is not None:
            proc.stop(timeout=5)
            self._forget(part.name)
        return PartStatus(part.name, "failed", rec.pid, part.address, detail, rec.log,
                          _tail(Path(rec.log)))

    # -- down / ps --

    def down(self) -> list[PartStatus]:
        """Stop exactly the processes `up` started (by pid, if still the same process), and
        take the stack's settings out of .env (self.env_cleared: which)."""
        with self._lock():
            self.env_cleared = clear_stack_env(env_file(self.cfg))
            recs = self.records()
            # Workers first, so none takes a job while the daemon or tunnel goes away.
            workers = [r for r in recs if r.name.startswith("worker-")]
            others = [r for r in recs if not r.name.startswith("worker-")]
            statuses = []
            for group in (workers, others):
                if group:
                    with ThreadPoolExecutor(len(group)) as pool:
                        statuses += list(pool.map(self._stop, group))
            return sorted(statuses, key=lambda s: _order(s.name))

    def _stop(self, rec: ProcessRecord) -> PartStatus:
        if rec.alive():
            processes.stop_pid(rec.pid, timeout=10)
            state = "stopped"
        else:
            state = "not running"
        self._forget(rec.name)
        return PartStatus(rec.name, state, rec.pid, rec.address, log=rec.log)

    def ps(self) -> list[PartStatus]:
        """Each recorded part: running and healthy, gone, running but unhealthy, or running
        and waiting: its health check fails only because a part it needs is down (frpc and
        the visitor when the daemon is), which its detail names."""
        recs = {r.name: r for r in self.records()}
        if not recs:
            return []
        workers = sum(1 for n in recs if n.startswith("worker-"))
        parts = {p.name: p for p in self.parts(self.redis_url(), workers)}
        out: dict[str, PartStatus] = {}
        causes: dict[str, list[str]] = {}  # part -> the parts actually down behind it
        for name, rec in recs.items():
            part = parts.get(name)
            if not rec.alive():
                out[name] = PartStatus(name, "not running", rec.pid, rec.address,
                                       "exited; `storyboard up` restarts it", rec.log,
                                       _tail(Path(rec.log)))
                continue
            if part is None or processes.wait_until(part.ready, 0):
                out[name] = PartStatus(name, "running", rec.pid, rec.address, log=rec.log)
                continue
            down = _causes(part.needs, out, causes)
            if down:
                causes[name] = down
                named = ", ".join(f"{n} is {out[n].state}" if n in out else f"{n} is not started"
                                  for n in down)
                out[name] = PartStatus(name, "waiting", rec.pid, rec.address,
                                       f"runs, but {named}", rec.log)
            else:
                out[name] = PartStatus(name, "unhealthy", rec.pid, rec.address,
                                       f"runs, but {part.check or 'its health check fails'}",
                                       rec.log, _tail(Path(rec.log)))
        return list(out.values())


def _digest(value: Any) -> str:
    """A short digest of a value (secrets included, so a new token restarts what uses it)."""
    import hashlib

    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _causes(needs: tuple[str, ...], seen: dict[str, PartStatus],
            causes: dict[str, list[str]]) -> list[str]:
    """The parts really down among needs, following needs that only wait themselves."""
    down: list[str] = []
    for need in needs:
        status = seen.get(need)
        found = causes.get(need, []) if status and status.state == "waiting" else \
            ([] if status and status.ok else [need])
        down += [n for n in found if n not in down]
    return down


def _order(name: str) -> tuple[int, int]:
    if name.startswith("worker-"):
        suffix = name.removeprefix("worker-")
        return (len(FIXED_PARTS), int(suffix) if suffix.isdigit() else 0)
    return (FIXED_PARTS.index(name) if name in FIXED_PARTS else len(FIXED_PARTS) + 1, 0)


def load_stack(config_path: Path | None = None, environ: Mapping[str, str] | None = None,
               generate: bool = False) -> tuple[Stack, list[str]]:
    cfg, env, notes = prepare(config_path, environ, generate)
    return Stack(cfg, env), notes

