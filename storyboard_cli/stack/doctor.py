"""`storyboard doctor`: is every part of the system reachable and configured consistently?

Each check runs on its own, with short timeouts, so one report shows everything that is wrong.
On the host (the default):

  config    the file parses; the secrets both sides share are set; [daemon] url is the tunnel's
  store     the SQLite store opens (migrations applied)
  redis     PING
  workers   at least one live worker listens on this system's queues; which daemon each uses
  frps      the FRP server accepts connections
  frpc      the GPU side's proxy is `running` in frpc's admin API (when frpc runs on this
            machine; a visitor's status shows nothing, so the host side is checked end to end)
  visitor   the stcp visitor's local ports are open (stcp mode)
  daemon    for every daemon the configuration names or a worker uses ("daemon:<box>" when
            there are several), through the tunnel: /healthz answers, /v1/status accepts the
            token, and refuses a request without one
  planner   the daemon's planner: an LLM's service asked by the daemon (its models list, else
            a one-token completion), since its key and the way out live on the GPU box
  daemon-bucket  the daemon's own bucket check (its settings live on the GPU box)
  models    every daemon's models, which are loaded, and their text encoders; a warning when
            projects with Chinese (or Japanese, Korean) stories render with a model that
            reads English only while the planner writes prompts in the story's language
  bucket    from here: write an object, read it back, presign a GET and fetch it, delete it
  serve     the HTTP API (`storyboard serve`: the stack's, or $STORYBOARD_SERVER's): /healthz
            answers, /api accepts STORYBOARD_API_TOKEN and refuses a request without it

With side="gpu" (`doctor --side gpu`, on the GPU box): config, daemon (the local one), model
(every model, loaded or not, and what its text encoder reads), planner, bucket (the daemon's own
check), frps (reachable from the GPU box) and frpc; it opens no store.

A failure carries a hint: the one thing to do about it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from storyboard_cli.stack import fleet, frp, processes
from storyboard_contract.config import Config, redact_url
from storyboard_contract.errors import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    StoryboardError,
    UsageError,
)

if TYPE_CHECKING:
    import httpx

    from storyboard_contract.wire import DaemonStatus

TIMEOUT = 3.0
SIDES = ("host", "gpu")
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
    def __init__(self, cfg: Config, local_frpc: bool | None = None, side: str = "host") -> None:
        """local_frpc: whether the GPU side's frpc runs on this machine (`storyboard up`);
        by default, whether this config's stack has started one (always, on the GPU side).
        side: "host" checks what the host runs and every daemon its workers use, through the
        tunnel; "gpu" checks the GPU box: its daemon, model, bucket, frpc (no store, no Redis).
        """
        if side not in SIDES:
            raise UsageError(f"--side must be one of {', '.join(SIDES)}, not {side!r}")
        self.cfg = cfg
        self.side = side
        self.local_frpc = side == "gpu" or ((cfg.state_dir / "run" / "frpc.json").is_file()
                                            if local_frpc is None else local_frpc)
        self.redis_ok = False
        self.workers: list[fleet.WorkerInfo] = []
        self.statuses: dict[str, DaemonStatus] = {}
        self._model_settings: str | None = None

    def run(self, on_check: Callable[[Check], None] | None = None) -> list[Check]:
        checks: list[Check] = []

        def run_steps(steps: list[tuple[str, Callable[[], str]]]) -> None:
            for name, step in steps:
                check = _run(name, step)
                checks.append(check)
                if on_check:
                    on_check(check)

        if self.side == "gpu":
            url = f"http://{frp.daemon_local_ip(self.cfg)}:{self.cfg.daemon.port}"
            run_steps([
                ("config", self.check_config),
                ("daemon", lambda: self.check_daemon(url)),
                ("model", lambda: self.check_model(url)),
                ("planner", lambda: self.check_planner(url)),
                ("bucket", lambda: self.check_daemon_bucket(url)),
                ("frps", self.check_frps),
                ("frpc", self.check_frpc),
            ])
            return checks
        run_steps([
            ("config", self.check_config),
            ("store", self.check_store),
            ("redis", self.check_redis),
            ("workers", self.check_workers),
            ("frps", self.check_frps),
            ("frpc", self.check_frpc),
            *([("visitor", self.check_visitor)] if self.cfg.frp.mode == "stcp" else []),
        ])
        urls = fleet.daemon_urls(self.cfg, self.workers)
        for url in urls:
            suffix = "" if len(urls) == 1 else f":{self.label(url)}"
            run_steps([(f"daemon{suffix}", lambda url=url: self.check_daemon(url)),
                       (f"planner{suffix}", lambda url=url: self.check_planner(url)),
                       (f"daemon-bucket{suffix}", lambda url=url: self.check_daemon_bucket(url)),
                       (f"models{suffix}", lambda url=url: self.check_languages(url))])
        run_steps([("bucket", self.check_bucket), ("serve", self.check_serve)])
        return checks

    def model_settings(self) -> str:
        """What the daemon would load with this box's settings (`gpu-daemon check`, once)."""
        if self._model_settings is None:
            self._model_settings = daemon_model_check(self.cfg)
        return self._model_settings

    def label(self, url: str) -> str:
        """A daemon's name in check names: its box, else its port."""
        box = frp.box_of_url(self.cfg, url)
        return box.name if box and box.name else str(urlsplit(url).port or url)

    def describe(self, url: str) -> str:
        box = frp.box_of_url(self.cfg, url) if url else None
        if box and box.name:
            return f"{box.name} ({url})"
        return url or "an unknown daemon (an older worker)"

    # -- checks: each returns its detail, or raises Failed / Skipped --

    def check_config(self) -> str:
        cfg = self.cfg
        gpu = self.side == "gpu"
        missing = [name for name, value in (
            ("STORYBOARD_DAEMON_TOKEN", cfg.daemon.token),
            (frp.TOKEN_ENV, cfg.frp.token),
            *([(frp.SECRET_KEY_ENV, cfg.frp.secret_key)] if cfg.frp.mode == "stcp" else []),
            *([(frp.ADMIN_PASSWORD_ENV, cfg.frp.admin_password)] if gpu else []),
        ) if not value]
        if missing:
            raise Failed(f"{', '.join(missing)} not set",
                         f"set them in .env (the same values on the {'host' if gpu else 'GPU box'}"
                         "); `storyboard up` generates them for a local stack")
        weak = [name for name, value in (
            ("STORYBOARD_DAEMON_TOKEN", cfg.daemon.token), (frp.TOKEN_ENV, cfg.frp.token),
            (frp.SECRET_KEY_ENV, cfg.frp.secret_key),
            (frp.ADMIN_PASSWORD_ENV, cfg.frp.admin_password),
        ) if value.startswith(PLACEHOLDERS)]
        if weak:
            raise Failed(f"{', '.join(weak)} still hold the .env.example placeholder",
                         "replace them with random values: openssl rand -hex 24")
        source = str(cfg.source) if cfg.source else "built-in defaults"
        if gpu:
            model = self.model_settings()
            return f"{source}; {cfg.frp.mode} tunnel to {cfg.frp.server_addr}:" \
                   f"{cfg.frp.server_port}, daemon on port {cfg.daemon.port}; model {model}"
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
        self.workers = fleet.live_workers(self.cfg, timeout=TIMEOUT)
        if not self.workers:
            queues = {self.cfg.queue.plan_queue, self.cfg.queue.render_queue}
            raise Failed("no worker listens on " + ", ".join(sorted(queues)),
                         "start workers: `storyboard up`, or `storyboard worker` on the host")
        per_daemon: dict[str, int] = {}
        for w in self.workers:
            per_daemon[w.daemon_url] = per_daemon.get(w.daemon_url, 0) + 1
        uses = ", ".join(f"{n} → {self.describe(url)}" for url, n in per_daemon.items())
        return f"{len(self.workers)} worker(s): {uses}"

    def check_frps(self) -> str:
        addr, port = self.cfg.frp.server_addr, self.cfg.frp.server_port
        if processes.port_open(port, addr, timeout=TIMEOUT):
            return f"{addr}:{port}"
        if self.side == "gpu":
            raise Failed(f"nothing accepts connections at {addr}:{port} from here",
                         "start frps on the host (frp/start_frps.sh); check [frp] server_addr "
                         "and that the host's firewall opens server_port")
        # On the host itself its public address may not loop back (no hairpin NAT).
        if addr != "127.0.0.1" and processes.port_open(port, timeout=TIMEOUT):
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
            start = ("start it: frp/start_frpc.sh (after `storyboard frp render --side gpu`)"
                     if self.side == "gpu" else
                     "`storyboard up` (or frp/start_frpc.sh on the GPU box)")
            raise Failed(f"frpc admin API at {frp.admin_url(self.cfg)} does not answer",
                         f"frpc is not running: {start}") from None
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
                         "the GPU daemon is down: " + (
                             "start it: gpu-daemon serve (its log says why it stopped)"
                             if self.side == "gpu" else "start gpu-daemon (`storyboard up`)"))
        if state != "running":
            err = proxy.get("err") or ""
            raise Failed(f"proxy {name}: {state}" + (f" ({err})" if err else ""),
                         "frpc is not logged in to frps: check frps, [frp] server_addr/"
                         f"server_port and {frp.TOKEN_ENV} on both sides")
        return f"proxy {name} running"

    def check_visitor(self) -> str:
        ports = [b.visitor_port for b in frp.boxes(self.cfg)]
        closed = [p for p in ports if not processes.port_open(p, timeout=TIMEOUT)]
        if closed:
            raise Failed(f"nothing listens on {', '.join(f'127.0.0.1:{p}' for p in closed)}",
                         "start the stcp visitor: `storyboard up`, or frp/start_frpc.sh visitor "
                         "(after `storyboard frp render --side host`)")
        return ", ".join(f"127.0.0.1:{p}" for p in ports)

    def check_daemon(self, url: str) -> str:
        import httpx

        from storyboard_contract.wire import DaemonStatus

        token = self.cfg.daemon.token
        try:
            # The daemon's own bucket round trip can take a few timeouts of its own.
            health, anonymous, authed = _probe(url, frp.HEALTH_PATH, "/v1/status", token,
                                               {"check": "bucket,planner"}, 4 * TIMEOUT)
        except httpx.TransportError as exc:
            if self.side == "gpu":
                raise Failed(f"{url}: {_reason(exc)}",
                             "start it: gpu-daemon serve (its log says why it stopped)") from None
            raise Failed(f"{url}: {_reason(exc)}",
                         "the tunnel does not reach a live daemon: check frpc and gpu-daemon "
                         "on the GPU box (`storyboard doctor --side gpu` there; "
                         "`storyboard up` locally)") from None
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
        status = DaemonStatus.model_validate(authed.json())
        self.statuses[url] = status
        return (f"{url}: token accepted, planner {status.planner}, images "
                f"{status.image_backend} on {status.device}")

    def _status(self, url: str) -> DaemonStatus:
        status = self.statuses.get(url)
        if status is None:
            raise Skipped("needs the daemon")
        return status

    def check_model(self, url: str) -> str:
        if url not in self.statuses:
            # Down (the daemon check says why): what it would load, from the settings here.
            raise Skipped(f"the daemon does not answer; its settings would load: "
                          f"{self.model_settings()}")
        status = self._status(url)
        wanted = self.cfg.images.model
        if status.image_backend == "sketch":
            if wanted and self.cfg.images.backend != "sketch":
                raise Failed(f"[images] model = {wanted!r}, but the daemon draws sketches",
                             "restart gpu-daemon with this storyboard.toml (its log says which "
                             "model it loaded)")
            return "sketch backend: no model needed ([images] model is empty)"
        if status.image_backend == "simulated":
            return "simulated backend (a benchmark tool): no model, no images drawn"
        if not status.model_loaded:
            raise Failed(f"{status.image_backend}: no model loaded", "see the daemon's log")
        return f"{status.image_backend} on {status.device}: {models_line(status)}"

    def check_languages(self, url: str) -> str:
        """The daemon's models; a warning for projects whose stories its models cannot read
        (Chinese for CLIP and T5) while nothing turns their prompts into English."""
        from storyboard_cli.store import Store
        from storyboard_contract.cjk import CJK_CHAR

        status = self._status(url)
        if not status.models:
            return f"{status.image_backend} backend: no models, no prompts to read"
        english_only = {m.name for m in status.models if not m.reads_chinese}
        default = next((m.name for m in status.models if m.default), None)
        if status.planner == "openai" and status.prompt_language == "en":
            return f"{models_line(status)}; the LLM planner writes English image prompts"
        try:
            store = Store(self.cfg.store_path)
        except Exception:  # noqa: BLE001 - the store check says what is wrong with it
            raise Skipped("needs the store") from None
        try:
            rows = store.db.execute("select id, story, model from projects "
                                    "order by id desc limit 200").fetchall()
        finally:
            store.close()
        stuck = sorted(pid for pid, story, model in rows
                       if (model or default) in english_only and CJK_CHAR.search(story))
        if stuck:
            raise _Warn(
                f"project(s) {', '.join(map(str, stuck))}: Chinese (or Japanese, "
                f"Korean) stories render with a model that reads English only, and the "
                f"{status.planner} planner writes image prompts in the story's language. Fix: "
                "[planner] backend = \"openai\" with prompt_language = \"en\" on the GPU "
                "box, or a model that reads Chinese (Kolors, HunyuanDiT) for them: storyboard "
                "settings PROJECT --model NAME")
        return models_line(status)

    def check_planner(self, url: str) -> str:
        """The daemon's planner: an LLM's service asked by the daemon (its key is there)."""
        seen = self._status(url).planner_check
        if seen is None:
            raise Skipped("this daemon does not check its planner (an older version)")
        if not seen.ok:
            raise Failed(f"as the daemon sees it: {seen.detail}", f"on the GPU box: {seen.hint}")
        return seen.detail

    def check_daemon_bucket(self, url: str) -> str:
        status = self._status(url)
        seen = status.bucket
        if seen is None:
            raise Skipped("this daemon does not report its bucket (an older version)")
        if not seen.ok:
            raise Failed(f"as the daemon sees it: {seen.detail}",
                         f"on the GPU box: {seen.hint} (its .env and [s3] settings)")
        s3 = self.cfg.s3
        if self.side == "host" and (seen.endpoint.rstrip("/"), seen.bucket) != (
                s3.endpoint.rstrip("/"), s3.bucket):
            raise _Warn(f"{seen.detail}; but this host uses "
                        f"{redact_url(s3.endpoint) or 'AWS S3'} bucket {s3.bucket}: links "
                        "re-signed here (`storyboard links`) point elsewhere")
        return seen.detail

    def check_bucket(self) -> str:
        from storyboard_contract.s3 import BucketProblem, probe_bucket

        try:
            return probe_bucket(self.cfg.s3, timeout=TIMEOUT)
        except BucketProblem as exc:
            raise Failed(str(exc), exc.hint) from None


    def check_serve(self) -> str:
        import httpx

        from storyboard_cli.remote import server_label
        from storyboard_cli.stack.supervisor import serve_url

        cfg = self.cfg
        url = cfg.server.url
        if not url and cfg.stack.serve and (cfg.state_dir / "run" / "serve.json").is_file():
            url = serve_url(cfg)
        if not url:
            raise Skipped("no `storyboard serve` to check: the stack runs none and "
                          "STORYBOARD_SERVER is not set")
        where, token = server_label(url), cfg.server.api_token
        try:
            # A route that needs only the store: Redis has a check of its own.
            health, anonymous, authed = _probe(url, "/healthz", "/api/tasks?limit=1", token)
        except httpx.TransportError as exc:
            raise Failed(f"{where}: {_reason(exc)}",
                         "start it: `storyboard up` (or `storyboard serve`); check "
                         "STORYBOARD_SERVER / [server] port") from None
        if health.status_code != 200:
            raise Failed(f"{where}/healthz answered {health.status_code}",
                         "something other than `storyboard serve` answers there: check "
                         "STORYBOARD_SERVER / [server] port")
        if authed is None:
            if anonymous.status_code == 200:
                raise _Warn(f"{where}: answers /api without a token (loopback only)")
            raise Failed(f"{where} requires an API token; STORYBOARD_API_TOKEN is not set",
                         "set STORYBOARD_API_TOKEN to the server's token; `storyboard up` "
                         "generates one for a local stack")
        if authed.status_code in (401, 403):
            raise Failed(f"{where} refused our API token",
                         "STORYBOARD_API_TOKEN differs from the one `storyboard serve` runs "
                         "with")
        if authed.status_code != 200:
            raise Failed(f"{where}/api/tasks answered {authed.status_code}",
                         "see the server's log")
        if anonymous.status_code not in (401, 403):
            raise _Warn(f"{where}: token accepted, but /api answers without one too: the "
                        "server runs without STORYBOARD_API_TOKEN")
        return f"{where}: token accepted"


def models_line(status: DaemonStatus) -> str:
    """A daemon's models in one line: name, architecture, what it reads, loaded or not."""
    return "; ".join(
        f"{m.name}{' (default)' if m.default else ''}: {m.architecture or m.kind}, "
        f"{m.text_encoder or 'text encoder unknown'} "
        f"({'reads Chinese and English' if m.reads_chinese else 'English only'}), "
        f"{'loaded' if m.loaded else 'not loaded'}" for m in status.models) or "no models"


def daemon_model_check(cfg: Config) -> str:
    """What the daemon would load, from `gpu-daemon check` (the daemon's own code, run as its
    entry point: the host package never imports the daemon); Failed with its one line."""
    import subprocess

    from storyboard_cli.stack.supervisor import console_script

    argv = [*console_script("gpu-daemon", "gpu_daemon.cli"), "check"]
    if cfg.source:
        argv += ["--config", str(cfg.source)]
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as exc:
        raise Failed(f"cannot run gpu-daemon check: {exc}",
                     "install the daemon on this box: pip install 'storyboard[daemon]'") from None
    if out.returncode != 0:
        lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
        raise Failed(lines[-1].removeprefix("gpu-daemon: error: "),
                     "fix [images] in storyboard.toml (the daemon refuses to start with it)")
    return "; ".join(line.removeprefix("model: ") for line in out.stdout.strip().splitlines())


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


def _probe(url: str, health_path: str, guarded: str, token: str,
           params: dict[str, str] | None = None, timeout: float = TIMEOUT
           ) -> tuple[httpx.Response, httpx.Response, httpx.Response | None]:
    """A service behind a bearer token, asked three things: its health path, the guarded
    path without the token, and with it (None when there is no token to send)."""
    import httpx

    with httpx.Client(base_url=url, timeout=TIMEOUT) as http:
        health = http.get(health_path)
        anonymous = http.get(guarded)
        authed = http.get(guarded, params=params, timeout=timeout,
                          headers={"Authorization": f"Bearer {token}"}) if token else None
    return health, anonymous, authed


def _redis_ping(url: str) -> bool:
    from storyboard_cli.stack.supervisor import redis_answers

    return redis_answers(url, timeout=TIMEOUT)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]
