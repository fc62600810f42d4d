"""One typed configuration object for both sides, from `storyboard.toml` + environment.

Resolution order for the file: ``--config PATH``, ``$STORYBOARD_CONFIG``, ``storyboard.toml`` in
the current folder or the nearest folder above it (as git finds its repository), then
``<user config dir>/storyboard/storyboard.toml``; with none of them, the defaults below.
A ``.env`` beside the file (and in the current directory) is loaded without overriding the
real environment. Environment variables override the file: ``STORYBOARD_<SECTION>_<KEY>``
for every setting, plus the names the original system used for S3 (``ACCESS_KEY``,
``SECRET_KEY``, ``ENDPOINT``, ``TOS_BUCKET``) and the standard ``AWS_*`` names.

Secrets (tokens, keys, passwords) come only from the environment; putting one in the file
is an error, so the file can be committed and shared.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

from storyboard_contract import frames, keys
from storyboard_contract.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CONFIG_FILENAME = "storyboard.toml"
REDACTED = "***"
# Query parameters that carry credentials in URLs (api_key=, token=, X-Amz-Signature=, ...).
_SECRET_QUERY = re.compile(
    r"(?i)((?:^|&)[^=&]*(?:key|token|secret|passw|signature|credential|auth)[^=&]*=)[^&]*"
)


def _secret(*env: str) -> Any:
    return field(default="", metadata={"secret": True, "env": env})


def _env(*env: str, default: Any) -> Any:
    return field(default=default, metadata={"env": env})


@dataclass
class StoreConfig:
    path: str = "storyboard.db"


@dataclass
class RedisConfig:
    url: str = "redis://127.0.0.1:6379/0"


@dataclass
class QueueConfig:
    plan_queue: str = "storyboard-plan"
    render_queue: str = "storyboard-render"
    job_timeout: int = 600
    result_ttl: int = 3600
    # Doubling waits capped at a minute, the last one repeated: about 4 minutes of daemon,
    # tunnel or bucket outage are ridden out before a shot fails.
    retries: int = 8
    backoff: list[int] = field(default_factory=lambda: [2, 4, 8, 16, 32, 60])
    heartbeat_s: int = 5


@dataclass
class DaemonConfig:
    url: str = "http://127.0.0.1:17861"  # the stcp visitor's port ([frp] visitor_port)
    connect_timeout: float = 5.0
    read_timeout: float = 300.0
    host: str = "127.0.0.1"
    port: int = 7860
    # A plan request carries a whole screenplay (at most storyboard_contract.screenplay's
    # bounds, about 3 MB as JSON).
    max_body_bytes: int = 4_194_304
    # A rendered image whose upload failed is kept (up to this many MiB of pixels, for this
    # many seconds) so that the retry only uploads it; 0 MiB keeps none.
    keep_images_mib: int = 256
    keep_images_s: float = 600.0
    token: str = _secret("STORYBOARD_DAEMON_TOKEN")


MAX_LINK_EXPIRY_S = 604_800  # SigV4 presigned links live at most 7 days
# The most workers `storyboard up` runs on one machine ([stack] workers, --workers).
MAX_WORKERS = 64


@dataclass
class S3Config:
    endpoint: str = _env("STORYBOARD_S3_ENDPOINT", "ENDPOINT", "AWS_ENDPOINT_URL", default="")
    region: str = _env(
        "STORYBOARD_S3_REGION", "REGION", "AWS_REGION", "AWS_DEFAULT_REGION", default="us-east-1"
    )
    bucket: str = _env("STORYBOARD_S3_BUCKET", "TOS_BUCKET", default="storyboard")
    addressing_style: str = "path"
    link_expiry: int = 86_400
    prefix: str = "projects"
    # Every bucket call waits at most about max_attempts * (connect_timeout + read_timeout)
    # for a bucket that does not answer (uploads, exports' frames, the daemon's images).
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 3
    # Where viewers' browsers reach the bucket, when they can ("" = they cannot: the web board
    # streams its frames through `storyboard serve`).
    public_endpoint: str = ""
    access_key: str = _secret("STORYBOARD_S3_ACCESS_KEY", "ACCESS_KEY", "AWS_ACCESS_KEY_ID")
    secret_key: str = _secret("STORYBOARD_S3_SECRET_KEY", "SECRET_KEY", "AWS_SECRET_ACCESS_KEY")


# [planner] preset: an LLM service by name, which fills base_url and model unless the file or
# the environment sets them (and backend = "openai" unless backend is set). The addresses and
# model names are the services' own documented ones; the key is the service's, in
# STORYBOARD_PLANNER_API_KEY on the GPU box.
PLANNER_PRESETS: dict[str, dict[str, str]] = {
    "deepseek": {"base_url": "https://api.deepseek.com/v1", "model": "deepseek-v4-flash"},
    "qwen": {"base_url": "https://dashscope.aliyuncs.com/compatible-mode/v1",
             "model": "qwen-plus"},
    "ark": {"base_url": "https://ark.cn-beijing.volces.com/api/v3",
            "model": "doubao-1-5-pro-32k-250115"},
    "openai": {"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"},
    "ollama": {"base_url": "http://127.0.0.1:11434/v1", "model": "llama3.1"},
    "vllm": {"base_url": "http://127.0.0.1:8000/v1", "model": "Qwen/Qwen2.5-7B-Instruct"},
}


@dataclass
class PlannerConfig:
    backend: str = "rules"
    # An LLM service by name (PLANNER_PRESETS): its base_url and model, unless set.
    preset: str = ""
    max_shots: int = 24
    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "gpt-4o-mini"
    timeout: float = 120.0
    # The language of the image prompts an LLM writes (action and dialogue stay in the
    # story's): "en" for the English-only text encoders of SD 1.x/2.x/SDXL (CLIP) and SD 3 /
    # FLUX (T5), "zh" for a Chinese-reading model (Kolors, HunyuanDiT), "story" for the
    # story's own language.
    prompt_language: str = "en"
    api_key: str = _secret("STORYBOARD_PLANNER_API_KEY", "OPENAI_API_KEY")


@dataclass
class ModelConfig:
    """One model of several on a daemon: an ``[images.models.NAME]`` table. Its files are its
    own (a VAE or LoRA fits one architecture); what it leaves unset of the generation
    defaults (size, steps, guidance, scheduler, negative prompt) is [images]'."""

    model: str = ""  # a checkpoint file, a diffusers folder or a cached hub id
    model_config: str = ""
    vae: str = ""
    loras: list[str] = field(default_factory=list)
    width: int | None = None  # the pixel budget of its frames
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    negative_prompt: str | None = None


# A model's name, as projects (`storyboard new --model NAME`) and requests give it.
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
# What [images] model is called when it is one of several.
DEFAULT_MODEL = "default"
GENERATION_DEFAULTS = ("width", "height", "steps", "guidance_scale", "scheduler",
                       "negative_prompt")


@dataclass
class ImagesConfig:
    backend: str = "auto"
    model: str = ""
    # Frame size: a project's aspect (new projects get `aspect`) at the pixel area
    # width x height, each side rounded to a multiple of size_multiple (storyboard_contract.frames).
    aspect: str = frames.DEFAULT_ASPECT
    width: int = 512
    height: int = 512
    size_multiple: int = 8
    steps: int = 20
    guidance_scale: float = 7.0
    max_batch: int = 4
    # The GPU settings (gpu_daemon/images/tuning.py; storyboard.toml explains each).
    device: str = "auto"  # auto, cpu, mps, cuda or cuda:N
    dtype: str = "auto"
    attention: str = "sdpa"
    channels_last: bool = False
    compile: bool = False
    vae_slicing: bool = False
    vae_tiling: bool = False
    allow_download: bool = False
    # The model's parts and sampler (gpu_daemon/models/sources.py; storyboard.toml explains
    # each). model_config: a local diffusers folder holding the configuration of a
    # single-file model (else the hub's, from the cache).
    model_config: str = ""
    allow_pickle: bool = False
    vae: str = ""
    loras: list[str] = field(default_factory=list)  # "FILE" or "FILE:SCALE"
    lora_dir: str = "loras"  # where the LoRAs a request names are looked up
    scheduler: str = "default"
    # Added to every render's negative prompt choice: a project's, else this, else the style's.
    negative_prompt: str = ""
    # Several models on one daemon: [images.models.NAME] tables (ModelConfig), after [images]
    # model (named "default") when it is set; the first is the default. At most max_loaded
    # stay loaded, the most recently used; another is loaded when a render asks for it.
    models: dict[str, ModelConfig] = field(default_factory=dict)
    max_loaded: int = 1
    # How a character's identity is carried from shot to shot when a project sets none
    # (CONSISTENCY_MODES; gpu_daemon/images/consistency.py). reference needs ip_adapter: a
    # local folder with one IP-Adapter weight file and its image_encoder/ folder, applied at
    # ip_adapter_scale.
    consistency: str = "text"
    ip_adapter: str = ""
    ip_adapter_scale: float = 0.6
    # The simulated backend, a benchmark tool (gpu_daemon/images/simulated.py): a pipeline
    # call of N images takes simulated_call_ms + N x simulated_image_ms.
    simulated_call_ms: float = 100.0
    simulated_image_ms: float = 100.0

    def frame_size(self, aspect: str, model: str | None = None) -> tuple[int, int]:
        """(width, height) of a frame at `aspect` within the pixel budget of `model` (a name
        of model_table(); None: the default model's), else [images]'."""
        width, height = (self.generation(model)[k] for k in ("width", "height"))
        return frames.frame_size(aspect, width * height, self.size_multiple)

    def model_table(self) -> dict[str, ModelConfig]:
        """Every model the daemon serves, by name, the default first: [images] model as
        "default" when it is set, then the [images.models.NAME] tables in file order."""
        table = {}
        if self.model:
            table[DEFAULT_MODEL] = ModelConfig(model=self.model, model_config=self.model_config,
                                               vae=self.vae, loras=list(self.loras))
        table.update(self.models)
        return table

    @property
    def default_model(self) -> str | None:
        return next(iter(self.model_table()), None)

    def generation(self, model: str | None = None) -> dict[str, Any]:
        """The generation defaults of `model` (None: the default one): its table's, and
        [images]' where it sets none."""
        table = self.model_table().get(model or self.default_model or "")
        return {key: getattr(self, key) if table is None or getattr(table, key) is None
                else getattr(table, key) for key in GENERATION_DEFAULTS}


@dataclass
class LimitsConfig:
    max_story_bytes: int = 200_000
    # A Fountain or Final Draft file (README, "Screenplays"): a feature's FDX is under 1 MB.
    max_screenplay_bytes: int = 2_000_000
    max_shots: int = 200
    max_prompt_chars: int = 1_000


@dataclass
class FrpConfig:
    mode: str = "stcp"
    server_addr: str = "127.0.0.1"
    server_port: int = 7000
    remote_port: int = 17860
    visitor_port: int = 17861
    proxy_name: str = "storyboard-daemon"
    visitor_user: str = "host"
    gpu_user: str = "gpu"
    admin_port: int = 7400
    admin_user: str = "admin"
    tls: bool = True
    # Several GPU boxes: one name each; box i gets its own proxy and port (see frp.boxes).
    boxes: list[str] = field(default_factory=list)
    token: str = _secret("STORYBOARD_FRP_TOKEN")
    secret_key: str = _secret("STORYBOARD_FRP_SECRET_KEY")
    admin_password: str = _secret("STORYBOARD_FRP_ADMIN_PASSWORD")


@dataclass
class StackConfig:
    state_dir: str = ".storyboard"
    workers: int = 2
    redis_port: int = 6390
    s3_port: int = 8333
    serve: bool = True  # `up` runs `storyboard serve` too


@dataclass
class ServerConfig:
    """`storyboard serve` (the HTTP API and web page), and where a client's --server points."""

    host: str = "127.0.0.1"
    port: int = 8080
    # Origins allowed to call the API from a browser (CORS); none by default.
    cors_origins: list[str] = field(default_factory=list)
    # Requests with a larger body are refused with 413: room for a screenplay file at
    # [limits] max_screenplay_bytes sent as JSON.
    max_body_bytes: int = 4_194_304
    # How long a web board login lasts, in seconds (7 days).
    session_expiry: int = 604_800
    url: str = _env("STORYBOARD_SERVER", "STORYBOARD_SERVER_URL", default="")
    api_token: str = _secret("STORYBOARD_API_TOKEN")


@dataclass
class Config:
    store: StoreConfig = field(default_factory=StoreConfig)
    redis: RedisConfig = field(default_factory=RedisConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    s3: S3Config = field(default_factory=S3Config)
    planner: PlannerConfig = field(default_factory=PlannerConfig)
    images: ImagesConfig = field(default_factory=ImagesConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    frp: FrpConfig = field(default_factory=FrpConfig)
    stack: StackConfig = field(default_factory=StackConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    # Where the settings came from; relative paths resolve against its directory.
    source: Path | None = None

    @property
    def base_dir(self) -> Path:
        return self.source.parent if self.source else Path.cwd()

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p

    @property
    def store_path(self) -> Path:
        return self.resolve(self.store.path)

    @property
    def state_dir(self) -> Path:
        return self.resolve(self.stack.state_dir)

    def redacted(self) -> dict[str, Any]:
        """The effective settings as plain data, every secret replaced by a marker."""
        out: dict[str, Any] = {"source": str(self.source) if self.source else None}
        for name, section in _sections(self):
            values = {}
            for f in dataclasses.fields(section):
                value = getattr(section, f.name)
                if f.metadata.get("secret"):
                    value = REDACTED if value else ""
                elif isinstance(value, str):
                    value = redact_url(value)
                elif isinstance(value, dict):
                    value = {k: dataclasses.asdict(v) if dataclasses.is_dataclass(v) else v
                             for k, v in value.items()}
                values[f.name] = value
            out[name] = values
        return out


def redact_url(url: str) -> str:
    """A URL without the credentials it may carry, for showing it anywhere: the password of
    ``user:password@`` (Redis, proxies), a token given as the user name, and secret-looking
    query parameters. Anything that is not a URL is returned as it is."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{REDACTED}@{host}" if has_password else f"{REDACTED}@{host}"
    query = _SECRET_QUERY.sub(rf"\1{REDACTED}", parts.query)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>()]+")


def redact_urls(text: str) -> str:
    """A message with every URL in it redacted (redact_url), for answers and logs."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)


def _sections(cfg: Config) -> list[tuple[str, Any]]:
    return [(f.name, getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.name != "source"]


def user_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "storyboard" / CONFIG_FILENAME


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file to use, or None for built-in defaults."""
    chosen = explicit or os.environ.get("STORYBOARD_CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        return path
    here = Path.cwd()
    for candidate in (*(folder / CONFIG_FILENAME for folder in (here, *here.parents)),
                      user_config_path()):
        if candidate.is_file():
            return candidate
    return None


def load_config(
    explicit: str | os.PathLike[str] | None = None,
    environ: dict[str, str] | None = None,
    load_env_file: bool = True,
) -> Config:
    """Read the file, apply `.env` and the environment, check every value."""
    path = find_config(explicit)
    if load_env_file and environ is None:
        _load_dotenv(path)
    env = dict(os.environ if environ is None else environ)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from None
    cfg = Config(source=path.resolve() if path else None)
    where = str(path) if path else "defaults"
    for key in data:
        if not any(key == name for name, _ in _sections(cfg)):
            known = ", ".join(name for name, _ in _sections(cfg))
            raise ConfigError(f"{where}: unknown section [{key}] (known: {known})")
    for name, section in _sections(cfg):
        values = data.get(name, {})
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: '{name}' must be a [{name}] table")
        _apply_file(section, name, values, where)
        _apply_env(section, name, env)
    _apply_preset(cfg.planner, data.get("planner", {}), env, where)
    normalise_config(cfg, where)
    check_config(cfg, where)
    return cfg


def dotenv_files(path: Path | None) -> list[Path]:
    """The .env files read, first one winning: beside the config file, then the current folder."""
    candidates = [*([path.parent / ".env"] if path else []), Path.cwd() / ".env"]
    seen = list(dict.fromkeys(c.resolve() for c in candidates))
    return [c for c in seen if c.is_file()]


def _load_dotenv(path: Path | None) -> None:
    for candidate in dotenv_files(path):
        from dotenv import load_dotenv  # ~8 ms: only when there is a file to read

        load_dotenv(candidate, override=False)


def dotenv_values_of(path: Path | None) -> dict[str, tuple[str, Path]]:
    """What the .env files set (variable -> value and the file it came from), first file wins."""
    from dotenv import dotenv_values

    values: dict[str, tuple[str, Path]] = {}
    for candidate in dotenv_files(path):
        for key, value in dotenv_values(candidate).items():
            if value is not None:
                values.setdefault(key, (value, candidate))
    return values


# `storyboard up` keeps the local stack's own settings in a marked block of .env, which
# `storyboard down` removes (storyboard_cli.stack.supervisor).
STACK_BLOCK_BEGIN = ("# >>> storyboard up: the local stack's settings, above storyboard.toml's "
                     "until `storyboard down` removes this block")
STACK_BLOCK_END = "# <<< storyboard up"


def split_stack_block(path: Path) -> tuple[list[str], dict[str, str]]:
    """The file's lines outside the stack's block, and the variables inside it."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return [], {}
    outside, inside, in_block = [], {}, False
    for line in lines:
        if line == STACK_BLOCK_BEGIN:
            in_block = True
        elif line == STACK_BLOCK_END and in_block:
            in_block = False
        elif in_block:
            key, sep, value = line.partition("=")
            if sep:
                inside[key.strip()] = value
        else:
            outside.append(line)
    return outside, inside


def value_sources(
    explicit: str | os.PathLike[str] | None = None, environ: dict[str, str] | None = None,
) -> dict[str, dict[str, str]]:
    """Where each setting's effective value comes from: "default", "file", ".env $VAR (path)"
    or "environment $VAR". Call it before load_config: loading copies .env into os.environ."""
    path = find_config(explicit)
    real = dict(os.environ if environ is None else environ)
    dotenv = dotenv_values_of(path)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            data = {}  # load_config reports it
    out: dict[str, dict[str, str]] = {}
    for name, section in _sections(Config()):
        in_file = data.get(name, {}) if isinstance(data.get(name), dict) else {}
        out[name] = {}
        for f in dataclasses.fields(section):
            source = "file" if f.name in in_file else "default"
            for var in _env_names(name, f):
                if real.get(var):
                    source = f"environment ${var}"
                    break
                if dotenv.get(var, ("", None))[0]:
                    file = dotenv[var][1]
                    by_up = var in split_stack_block(file)[1]
                    source = f".env ${var} ({file}" + (
                        ", written by `storyboard up`, removed by `storyboard down`)" if by_up
                        else ")")
                    break
            out[name][f.name] = source
    return out


def _apply_file(section: Any, name: str, values: dict[str, Any], where: str) -> None:
    hints = get_type_hints(type(section))
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key, raw in values.items():
        f = fields.get(key)
        if f is None:
            raise ConfigError(
                f"{where}: unknown key {name}.{key} (known: {', '.join(sorted(fields))})"
            )
        if f.metadata.get("secret"):
            envs = " or ".join(_env_names(name, f))
            raise ConfigError(
                f"{where}: {name}.{key} is a secret; set it in the environment or .env ({envs})"
            )
        if f.name == "models" and isinstance(section, ImagesConfig):
            section.models = _model_tables(raw, where)
            continue
        setattr(section, key, _coerce(raw, hints[key], f"{where}: {name}.{key}"))


def _apply_preset(planner: PlannerConfig, given: dict[str, Any], env: dict[str, str],
                  where: str) -> None:
    """[planner] preset fills what the file and the environment leave unset: base_url and
    model from PLANNER_PRESETS, and backend "openai"."""
    if not planner.preset:
        return
    preset = PLANNER_PRESETS.get(planner.preset)
    if preset is None:
        raise ConfigError(f"{where}: planner.preset = {planner.preset!r} is not one of "
                          f"{', '.join(PLANNER_PRESETS)}")
    fields = {f.name: f for f in dataclasses.fields(planner)}
    for key, value in {"backend": "openai", **preset}.items():
        if key not in given and not any(n in env for n in _env_names("planner", fields[key])):
            setattr(planner, key, value)


def _model_tables(raw: Any, where: str) -> dict[str, ModelConfig]:
    """[images.models.NAME] tables, each read like a section."""
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise ConfigError(f"{where}: images.models must hold [images.models.NAME] tables")
    tables = {}
    for name, values in raw.items():
        if not MODEL_NAME.fullmatch(name):
            raise ConfigError(f"{where}: [images.models.{name}]: a model's name is 1 to 40 "
                              "letters, digits, '-', '_' or '.', starting with a letter or digit")
        table = ModelConfig()
        _apply_file(table, f"images.models.{name}", values, where)
        tables[name] = table
    return tables


def _env_names(section: str, f: dataclasses.Field[Any]) -> tuple[str, ...]:
    generic = f"STORYBOARD_{section.upper()}_{f.name.upper()}"
    named = tuple(f.metadata.get("env", ()))
    return named if generic in named else (generic, *named)


def _apply_env(section: Any, name: str, env: dict[str, str]) -> None:
    hints = get_type_hints(type(section))
    for f in dataclasses.fields(section):
        if getattr(hints[f.name], "__origin__", None) is dict:
            continue  # tables ([images.models.NAME]) come from the file only
        for var in _env_names(name, f):
            raw = env.get(var)
            if raw is not None and raw != "":
                setattr(section, f.name, _coerce_env(raw, hints[f.name], f"${var}"))
                break


def _coerce(raw: Any, typ: Any, what: str) -> Any:
    ok = {
        bool: isinstance(raw, bool),
        int: isinstance(raw, int) and not isinstance(raw, bool),
        float: isinstance(raw, int | float) and not isinstance(raw, bool),
        str: isinstance(raw, str),
    }
    if typ in ok:
        if not ok[typ]:
            raise ConfigError(f"{what}: expected {typ.__name__}, got {raw!r}")
        return float(raw) if typ is float else raw
    optional = [t for t in getattr(typ, "__args__", ()) if t is not type(None)]
    if type(None) in getattr(typ, "__args__", ()) and len(optional) == 1:
        return _coerce(raw, optional[0], what)  # TOML has no null: a value is given
    if getattr(typ, "__origin__", None) is list:
        item = typ.__args__[0]
        if not isinstance(raw, list) or not all(
                isinstance(x, item) and not isinstance(x, bool) for x in raw):
            kind = "integers" if item is int else "strings"
            raise ConfigError(f"{what}: expected a list of {kind}, got {raw!r}")
        return raw
    raise ConfigError(f"{what}: unsupported setting type")  # pragma: no cover


def _coerce_env(raw: str, typ: Any, what: str) -> Any:
    try:
        if typ is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError
            return lowered in {"1", "true", "yes", "on"}
        if typ is int:
            return int(raw)
        if typ is float:
            return float(raw)
        if getattr(typ, "__origin__", None) is list:
            item = typ.__args__[0]
            return [item(x.strip()) for x in raw.split(",") if x.strip()]
    except ValueError:
        kind = getattr(typ, "__name__", "a list of integers")
        raise ConfigError(f"{what}: cannot read {raw!r} as {kind}") from None
    return raw


# The samplers a user picks by name (gpu_daemon/models/schedulers.py builds them); "default"
# is the model's own.
# How a character's identity is carried from shot to shot: its description in every prompt,
# its reference image through IP-Adapter, attention shared across the images that show it,
# or its own LoRA and trigger word (the wire's Consistency).
CONSISTENCY_MODES = ("text", "reference", "attention", "lora")
SCHEDULER_NAMES = ("default", "dpmpp_2m_karras", "dpmpp_sde_karras", "euler_a", "euler", "ddim",
                   "unipc", "lcm")

_CHOICES = {
    ("s3", "addressing_style"): {"path", "virtual", "auto"},
    ("planner", "backend"): {"rules", "openai"},
    ("planner", "prompt_language"): {"en", "zh", "ja", "ko", "story"},
    ("images", "backend"): {"auto", "sketch", "diffusers", "simulated"},
    ("images", "dtype"): {"auto", "float32", "float16", "bfloat16"},
    ("images", "attention"): {"sdpa", "classic"},
    ("images", "scheduler"): set(SCHEDULER_NAMES),
    ("images", "consistency"): set(CONSISTENCY_MODES),
    ("frp", "mode"): {"tcp", "stcp"},
}


def normalise_config(cfg: Config, where: str) -> None:
    """Rewrite values into their one spelling: the aspect by its name ("9x16" is 9:16), and
    the original system's ENDPOINT, a bare TOS host name, as an https:// URL. An aspect no
    spelling names is a ConfigError."""
    try:
        cfg.images.aspect = frames.normalise_aspect(cfg.images.aspect)
    except ValueError as exc:
        raise ConfigError(f"{where}: images.aspect: {exc}") from None
    if cfg.s3.endpoint and "://" not in cfg.s3.endpoint:
        cfg.s3.endpoint = "https://" + cfg.s3.endpoint
    if cfg.s3.public_endpoint and "://" not in cfg.s3.public_endpoint:
        cfg.s3.public_endpoint = "https://" + cfg.s3.public_endpoint


def check_config(cfg: Config, where: str) -> None:
    """Refuse a value outside its choices or range (a ConfigError naming it); changes
    nothing."""
    for (section, key), allowed in _CHOICES.items():
        value = getattr(getattr(cfg, section), key)
        if value not in allowed:
            raise ConfigError(
                f"{where}: {section}.{key} = {value!r} is not one of {', '.join(sorted(allowed))}"
            )
    positive = [
        ("queue", "job_timeout"), ("daemon", "port"), ("daemon", "max_body_bytes"),
        ("s3", "link_expiry"), ("s3", "connect_timeout"), ("s3", "read_timeout"),
        ("s3", "max_attempts"), ("planner", "max_shots"), ("images", "width"),
        ("images", "height"), ("images", "steps"), ("images", "max_batch"),
        ("images", "max_loaded"),
        ("limits", "max_story_bytes"), ("limits", "max_screenplay_bytes"),
        ("limits", "max_shots"), ("limits", "max_prompt_chars"),
        ("stack", "workers"), ("server", "port"), ("server", "max_body_bytes"),
        ("server", "session_expiry"),
    ]
    for section, key in positive:
        if getattr(getattr(cfg, section), key) <= 0:
            raise ConfigError(f"{where}: {section}.{key} must be greater than 0")
    if cfg.stack.workers > MAX_WORKERS:
        raise ConfigError(f"{where}: stack.workers must be at most {MAX_WORKERS}")
    for key in ("keep_images_mib", "keep_images_s"):
        if getattr(cfg.daemon, key) < 0:
            raise ConfigError(f"{where}: daemon.{key} must not be negative")
    for key in ("simulated_call_ms", "simulated_image_ms"):
        if getattr(cfg.images, key) < 0:
            raise ConfigError(f"{where}: images.{key} must not be negative")
    try:
        keys.check_prefix(cfg.s3.prefix)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if cfg.s3.link_expiry > MAX_LINK_EXPIRY_S:
        raise ConfigError(f"{where}: s3.link_expiry must be at most {MAX_LINK_EXPIRY_S} s "
                          "(7 days, SigV4 limit)")
    if not 0.0 <= cfg.images.ip_adapter_scale <= 2.0:
        raise ConfigError(f"{where}: images.ip_adapter_scale must be between 0 and 2 "
                          "(1.0 = the reference as strong as the prompt)")
    if cfg.images.consistency == "reference" and not cfg.images.ip_adapter:
        raise ConfigError(f"{where}: images.consistency = \"reference\" needs images.ip_adapter: "
                          "a local folder with an IP-Adapter weight file and its image_encoder/")
    for key in ("width", "height"):
        if getattr(cfg.images, key) % 8:
            raise ConfigError(f"{where}: images.{key} must be a multiple of 8")
    _check_model_tables(cfg.images, where)
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", cfg.images.device):
        raise ConfigError(f"{where}: images.device = {cfg.images.device!r} is not one of auto, "
                          "cpu, mps, cuda, cuda:N (N: the GPU's index)")
    if cfg.images.size_multiple not in range(8, 257, 8):
        raise ConfigError(f"{where}: images.size_multiple must be 8, 16, ... or 256")
    boxes = cfg.frp.boxes
    bad = [b for b in boxes if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}", b)]
    if bad or len(set(boxes)) != len(boxes):
        raise ConfigError(f"{where}: frp.boxes must be distinct names of letters, digits, '-' "
                          f"and '_' (got {boxes!r})")
    if not cfg.daemon.url.startswith(("http://", "https://")):
        raise ConfigError(f"{where}: daemon.url must start with http:// or https://")


def _check_model_tables(images: ImagesConfig, where: str) -> None:
    """Each [images.models.NAME] table names a model and sets its defaults within range."""
    if images.model and DEFAULT_MODEL in images.models:
        raise ConfigError(f"{where}: [images.models.{DEFAULT_MODEL}] and images.model both name "
                          f"the model called {DEFAULT_MODEL!r}; rename the table or move "
                          "images.model into it")
    for name, table in images.models.items():
        what = f"{where}: images.models.{name}"
        if not table.model:
            raise ConfigError(f"{what}.model is not set: a checkpoint file, a diffusers folder "
                              "or a Hugging Face id")
        if table.scheduler is not None and table.scheduler not in SCHEDULER_NAMES:
            raise ConfigError(f"{what}.scheduler = {table.scheduler!r} is not one of "
                              f"{', '.join(SCHEDULER_NAMES)}")
        for key in ("width", "height", "steps"):
            value = getattr(table, key)
            if value is not None and (value <= 0 or (key != "steps" and value % 8)):
                raise ConfigError(f"{what}.{key} must be greater than 0"
                                  + ("" if key == "steps" else " and a multiple of 8"))
        if table.guidance_scale is not None and table.guidance_scale < 0:
            raise ConfigError(f"{what}.guidance_scale must not be negative")
