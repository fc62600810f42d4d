"""Which model to load and from where: a ``ModelSpec`` (file or folder, its configuration, VAE
and LoRAs), checked and resolved before anything heavy is imported, then loaded.

``images.model`` may be

- a diffusers folder (``model_index.json`` and one folder per component);
- a single-file checkpoint (``.safetensors``; a pickle only with ``images.allow_pickle``) of
  SD 1.x/2.x, SDXL, SD 3.x or FLUX.1, as model sites and ComfyUI/A1111 keep them. Its
  architecture is read from the file's header (checkpoints.py); its pipeline configuration
  comes from ``images.model_config`` (a local diffusers folder of the same architecture) or
  from the hub repository of that architecture, which must be in the Hugging Face cache unless
  ``images.allow_download`` is set (then its configuration files, a few kB, are fetched once,
  from ``$HF_ENDPOINT`` when set: a mirror);
- a Hugging Face id already in the cache (or any id, with ``allow_download``).

A value that names a path (it exists, or has a weight file's suffix, or starts with ``.``,
``/`` or ``~``) is never taken for a hub id. Relative paths resolve against the configuration
file's folder.

Every check that needs no model is made by ``resolve`` in one place, so a wrong setting is one
line and exit 2 at daemon start, before torch is even imported. The spec is what a second
model would be described by too: the loader knows nothing of ``[images]``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_daemon.models import checkpoints
from storyboard_contract.errors import ConfigError
from storyboard_contract.wire import MAX_LORA_SCALE, split_lora

if TYPE_CHECKING:
    from storyboard_contract.config import ImagesConfig

log = logging.getLogger("gpu_daemon.diffusers")

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
WEIGHT_SUFFIXES = checkpoints.SAFETENSORS_SUFFIXES + checkpoints.PICKLE_SUFFIXES


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    scale: float = 1.0

    @property
    def adapter_name(self) -> str:
        """The name peft knows the adapter by: one per file (peft refuses dots in names)."""
        return "lora_" + hashlib.sha1(str(self.path).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ModelSpec:
    """A model as configured: enough to check it, load it and name it in provenance."""

    name: str  # how the daemon and projects refer to it ("default" for [images] model)
    model: str  # a file, a folder or a hub id, as the user wrote it
    base_dir: Path  # where relative paths start
    config: str = ""  # a local diffusers folder with the configuration of a single file
    vae: str = ""
    loras: tuple[LoraSpec, ...] = ()
    scheduler: str = "default"
    allow_pickle: bool = False
    allow_download: bool = False

    where: str = "images"  # its settings' table, for messages

    @classmethod
    def from_config(cls, images: ImagesConfig, base_dir: Path, name: str | None = None
                    ) -> ModelSpec:
        """The model called `name` (None: the default one): [images] model is "default",
        the others [images.models.NAME] tables (ImagesConfig.model_table)."""
        from storyboard_contract.config import DEFAULT_MODEL

        name = name or images.default_model or DEFAULT_MODEL
        table = images.model_table().get(name)
        where = "images" if name == DEFAULT_MODEL and images.model else f"images.models.{name}"
        if table is None:
            return cls(name=name, model="", base_dir=base_dir, where=where)
        return cls(name=name, model=table.model, base_dir=base_dir, config=table.model_config,
                   vae=table.vae,
                   loras=tuple(parse_lora(text, base_dir, f"{where}.loras")
                               for text in table.loras),
                   scheduler=images.generation(name)["scheduler"],
                   allow_pickle=images.allow_pickle, allow_download=images.allow_download,
                   where=where)

    def path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def parse_lora(text: str, base_dir: Path, what: str) -> LoraSpec:
    """``FILE`` or ``FILE:SCALE`` (wire.split_lora), checked: the file is a safetensors LoRA
    (its header says so)."""
    file, scale = split_lora(text)
    if not file.strip():
        raise ConfigError(f"{what}: {text!r} names no file (FILE or FILE:SCALE)")
    if abs(scale) > MAX_LORA_SCALE:
        raise ConfigError(f"{what}: {text!r}: the scale must be between -{MAX_LORA_SCALE:g} and "
                          f"{MAX_LORA_SCALE:g}")
    path = Path(file).expanduser()
    path = path if path.is_absolute() else base_dir / path
    check_lora_file(path, what)
    return LoraSpec(path.resolve(), scale)


def check_lora_file(path: Path, what: str) -> None:
    """A LoRA must be a whole safetensors file whose tensors are LoRA weights."""
    if not path.is_file():
        raise ConfigError(f"{what}: no LoRA file at {path}")
    if path.suffix.lower() not in checkpoints.SAFETENSORS_SUFFIXES:
        raise ConfigError(f"{what}: {path} is not a .safetensors file (LoRAs are loaded from "
                          "safetensors only)")
    shapes = checkpoints.read_header(path, what)
    if not checkpoints.is_lora(shapes):
        raise ConfigError(f"{what}: {path} is not a LoRA (no lora_A/lora_B or lora_down/lora_up "
                          "weights in it)")


@dataclass(frozen=True)
class ResolvedModel:
    """Where the weights and the configuration of a model are, checked."""

    kind: str  # "folder", "file" or "hub"
    source: str  # the folder, file or hub id
    architecture: checkpoints.Architecture | None = None  # a file's, when known before loading
    config: str | None = None  # a file's configuration: a local diffusers folder
    vae: Path | None = None


def resolve(spec: ModelSpec) -> ResolvedModel:
    """Checks the spec against the disk and the cache: one ConfigError line for what is wrong,
    nothing heavy imported."""
    what = f"{spec.where}.model"
    if not spec.model:
        raise ConfigError(
            f"images.backend = diffusers needs {what}: a checkpoint file (.safetensors), a "
            "diffusers folder or a Hugging Face id already in the cache")
    vae = _resolve_vae(spec) if spec.vae else None
    path = spec.path(spec.model)
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise ConfigError(f"{what}: {path} is not a diffusers model folder (no "
                              "model_index.json)")
        return ResolvedModel("folder", str(path), vae=vae)
    if path.is_file():
        architecture = checkpoints.detect(path, spec.allow_pickle, what)
        config = _config_for_file(spec, path, architecture)
        return ResolvedModel("file", str(path), architecture, config, vae)
    if _names_a_path(spec.model):
        raise ConfigError(f"{what}: no model file or folder at {path}")
    if not spec.allow_download:
        _require_cached(spec.model, what)
    return ResolvedModel("hub", spec.model, vae=vae)


def _names_a_path(value: str) -> bool:
    return (value.startswith((".", "/", "~")) or "\\" in value or not _HUB_ID.match(value)
            or value.lower().endswith(WEIGHT_SUFFIXES) or value.count("/") > 1)


def cached_snapshot(repo: str) -> str | None:
    """The folder of a hub repository's cached snapshot (its model_index.json), if any."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, "model_index.json")
    return str(Path(found).parent) if isinstance(found, str) else None


def _require_cached(repo: str, what: str, needed_for: str = "") -> str:
    """The cached snapshot folder of a hub repository, or one line saying how to get it."""
    found = cached_snapshot(repo)
    if found is not None:
        return found
    from huggingface_hub.constants import HF_HUB_CACHE

    purpose = f" ({needed_for})" if needed_for else ""
    raise ConfigError(
        f"{what}: {repo!r}{purpose} is not in the Hugging Face cache ({HF_HUB_CACHE}) and "
        f"downloads are off; download it once (hf download {repo}{_config_files(needed_for)}), "
        "or set images.allow_download = true (HF_ENDPOINT picks a mirror)")


def _config_files(needed_for: str) -> str:
    return " --include '*.json' '*.txt' '*.model'" if needed_for else ""


def _config_for_file(spec: ModelSpec, path: Path,
                     architecture: checkpoints.Architecture | None) -> str | None:
    """The diffusers folder whose configuration fits the checkpoint: images.model_config, or
    the cached (or, with allow_download, fetched) hub configuration of its architecture."""
    if spec.config:
        folder = spec.path(spec.config)
        if not (folder / "model_index.json").is_file():
            raise ConfigError(f"{spec.where}.model_config: {folder} is not a diffusers model "
                              "folder (no model_index.json)")
        named = checkpoints.pipeline_class_of_folder(folder)
        if architecture is not None and named not in \
                checkpoints.PIPELINES_OF_FAMILY[architecture.family]:
            raise ConfigError(
                f"{spec.where}.model_config: {folder} configures a {named}, but {path.name} is an "
                f"{architecture.label} checkpoint ({architecture.pipeline}); point it at a "
                f"folder of the same architecture, e.g. {architecture.config_repo}'s")
        return str(folder)
    if architecture is None:
        raise ConfigError(f"{spec.where}.model: {path} is a pickle; set {spec.where}.model_config "
                          "to the diffusers folder of its architecture (its tensors are only "
                          "known once it is loaded)")
    if spec.allow_download:
        return cached_snapshot(architecture.config_repo)  # None: the loader fetches it
    return _require_cached(architecture.config_repo, f"{spec.where}.model",
                           f"the configuration of {architecture.label} checkpoints like "
                           f"{path.name}; or set {spec.where}.model_config to a local diffusers "
                           "folder of the same architecture")


def _resolve_vae(spec: ModelSpec) -> Path:
    what = f"{spec.where}.vae"
    path = spec.path(spec.vae)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"{what}: {path} is not a diffusers VAE folder (no config.json)")
        return path
    if not path.is_file():
        raise ConfigError(f"{what}: no VAE file or folder at {path}")
    if checkpoints.is_pickle(path):
        checkpoints.check_pickle_allowed(path, spec.allow_pickle, what)
        return path
    shapes = checkpoints.read_header(path, what)
    if not checkpoints.is_vae(shapes):
        raise ConfigError(f"{what}: {path} is not a VAE (no encoder/decoder weights in it)")
    return path


def download_config(repo: str) -> str:
    """The configuration files of a hub repository (no weights), fetched once into the cache;
    huggingface_hub reads HF_ENDPOINT, so a mirror is used when one is set."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.constants import ENDPOINT

    try:
        return snapshot_download(repo, allow_patterns=["*.json", "**/*.json", "*.txt",
                                                       "**/*.txt", "**/*.model"])
    except Exception as exc:  # noqa: BLE001 - any hub failure is one line at start-up
        raise ConfigError(f"images.model: cannot download the configuration of {repo} from "
                          f"{ENDPOINT}: {type(exc).__name__}: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def load_pipeline(spec: ModelSpec, resolved: ResolvedModel, dtype: Any) -> Any:
    """The text-to-image pipeline of a resolved model, its VAE replaced when one is set.

    Loading errors that come from the files (a wrong config folder, missing components) are
    ConfigError lines; nothing is downloaded unless allow_download."""
    import diffusers

    offline = not spec.allow_download
    try:
        if resolved.kind == "file":
            pipe = _load_single_file(spec, resolved, dtype)
        else:
            pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
                resolved.source, dtype=dtype, local_files_only=offline,
                **_absent_in_folder(Path(resolved.source)) if resolved.kind == "folder" else {})
        if resolved.vae is not None:
            pipe.vae = load_vae(resolved.vae, pipe.vae, dtype, offline)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 - at start-up any load failure is one line
        hint = ""
        if type(exc).__name__ == "SingleFileComponentError":
            # SD 3 and FLUX files often hold the transformer alone.
            hint = ("; this file lacks some of the model's parts: point images.model_config at "
                    "a full diffusers folder of the model (with its text encoders and VAE)")
        raise ConfigError(f"{spec.where}.model: cannot load {spec.model!r}: {type(exc).__name__}: "
                          f"{_first_line(exc)}{hint}") from None
    return pipe


def _load_single_file(spec: ModelSpec, resolved: ResolvedModel, dtype: Any) -> Any:
    import diffusers

    path = Path(resolved.source)
    architecture = resolved.architecture
    if architecture is None:  # a pickle, allowed: its tensors tell what it is
        from diffusers.loaders.single_file_utils import load_single_file_checkpoint

        tensors = load_single_file_checkpoint(str(path), local_files_only=True)
        architecture = checkpoints.detect_tensors(
            {k: list(v.shape) for k, v in tensors.items() if hasattr(v, "shape")}, path)
        del tensors
    config = resolved.config or download_config(architecture.config_repo)
    named = checkpoints.pipeline_class_of_folder(Path(config))
    if named not in checkpoints.PIPELINES_OF_FAMILY[architecture.family]:
        raise ConfigError(f"images.model_config: {config} configures a {named}, but {path.name} "
                          f"is an {architecture.label} checkpoint")
    pipeline_class = getattr(diffusers, architecture.pipeline)
    log.info("loading %s as an %s checkpoint, configuration from %s", path.name,
             architecture.label, config)
    return pipeline_class.from_single_file(str(path), config=config, dtype=dtype,
                                           local_files_only=True,
                                           **_absent_parts(path, architecture, Path(config)))


def _absent_in_folder(folder: Path) -> dict[str, None]:
    """The parts a folder was saved without (null in model_index.json: SD 3 without T5),
    which diffusers wants named as None."""
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {name: None for name, value in index.items()
            if isinstance(value, list) and value and value[0] is None}


def _absent_parts(path: Path, architecture: checkpoints.Architecture, config: Path
                  ) -> dict[str, None]:
    """SD 3 runs without its T5 encoder (less memory, prompts read by the CLIPs alone): when
    neither the file nor the configuration folder holds T5's weights, it is left out."""
    if architecture.family != "sd3" or checkpoints.is_pickle(path):
        return {}
    if "text_encoders.t5xxl.transformer.shared.weight" in checkpoints.read_header(path) or \
            any((config / "text_encoder_3").glob("*.safetensors")):
        return {}
    log.info("%s holds no T5 text encoder (nor does %s): SD 3 runs without it", path.name,
             config)
    return {"text_encoder_3": None, "tokenizer_3": None}


def load_vae(path: Path, current: Any, dtype: Any, offline: bool) -> Any:
    """A VAE from a diffusers folder, or from a single file in the original layout (the VAEs
    model sites distribute) or diffusers' (a folder's weights file); the model's own VAE's
    config tells the architecture of a file."""
    import tempfile

    from diffusers import AutoencoderKL

    if path.is_dir():
        return AutoencoderKL.from_pretrained(path, torch_dtype=dtype, local_files_only=offline)
    if not checkpoints.is_pickle(path) and any(
            ".down_blocks." in name for name in checkpoints.read_header(path, "images.vae")):
        from safetensors.torch import load_file

        vae = AutoencoderKL.from_config(current.config)
        vae.load_state_dict(load_file(path))  # strict: a VAE of another shape is refused
        return vae.to(dtype)
    with tempfile.TemporaryDirectory(prefix="sb-vae-config-") as folder:
        current.save_config(folder)
        return AutoencoderKL.from_single_file(str(path), config=folder, torch_dtype=dtype,
                                              local_files_only=True)
