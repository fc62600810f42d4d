"""Writing an export: where it goes, writing it whole or not at all, and putting it
in the bucket behind a presigned link (`--upload`).

An export is written into a temporary folder beside its destination and moved into place when
complete, so a failure (the bucket gone mid-way, a full disk, Ctrl-C) leaves any earlier file
of that name as it was. An existing destination is replaced only when asked (`force`): a
Storyboarder folder may hold drawings made since.

Only a regular file or a folder is ever replaced. A FIFO or a character device (a pipe a
reader waits on, a terminal), or a link to one (/dev/stdout), is written into, as `cat >`
would: a single-file export only, since nothing can be put beside it; a socket or block
device is refused. A link to a file or folder is followed: its target is replaced, the link
kept. Whatever place cannot be written says so in one line (UsageError).
"""

from __future__ import annotations

import importlib
import mimetypes
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import file_stem, sheet
from storyboard_contract.errors import UsageError

if TYPE_CHECKING:
    from storyboard_cli.board.options import ExportOptions
    from storyboard_contract.config import S3Config

# format -> (MODULE.FUNCTION in storyboard_cli.board that writes it, its file's extension).
# Storyboarder's project is always a folder (NAME/NAME.storyboarder), a timeline one unless
# its frames are links (NAME/NAME.otio and NAME/frames/): is_folder().
WRITERS = {"html": ("html.write", ".html"), "pdf": ("pdf.write", ".pdf"),
           "mp4": ("animatic.write", ".mp4"), "storyboarder": ("storyboarder.write", ""),
           "zip": ("archive.write", ".zip"), "otio": ("editorial.write_otio", ".otio"),
           "edl": ("editorial.write_edl", ".edl"), "fcp7xml": ("editorial.write_fcp7xml", ".xml"),
           "fcpxml": ("editorial.write_fcpxml", ".fcpxml"), "csv": ("shotlist.write", ".csv")}
# What the export extra brings (pyproject.toml), by import name.
_TIMELINE_NEEDS = ("opentimelineio", "PIL")
NEEDS = {"pdf": ("fpdf", "PIL"), "mp4": ("av", "PIL"), "storyboarder": ("PIL",),
         "otio": _TIMELINE_NEEDS, "edl": (*_TIMELINE_NEEDS, "otio_cmx3600_adapter"),
         "fcp7xml": (*_TIMELINE_NEEDS, "otio_fcp_adapter"),
         "fcpxml": (*_TIMELINE_NEEDS, "otio_fcpx_xml_adapter")}
INSTALL_HINT = "pip install 'storyboard[export]' (make setup installs it)"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".mp4": "video/mp4", ".pdf":
                 "application/pdf", ".zip": "application/zip", ".csv": "text/csv; charset=utf-8",
                 ".otio": "application/json", ".edl": "text/plain; charset=utf-8",
                 ".xml": "application/xml", ".fcpxml": "application/xml"}


@dataclass
class Exported:
    """What an export wrote: its files (the export first), how many frames it holds and the
    shots drawn as empty frames, with why."""

    files: list[Path]
    frames: int = 0
    empty: list[dict[str, Any]] = field(default_factory=list)


def check_installed(fmt: str) -> None:
    """A UsageError saying how to install what `fmt` needs, when it is missing."""
    for module in NEEDS.get(fmt, ()):
        try:
            importlib.import_module(module)
        except ImportError:
            raise UsageError(f"the {fmt} export needs the package {module!r}: "
                             f"{INSTALL_HINT}") from None


def is_folder(fmt: str, options: ExportOptions | None = None) -> bool:
    """Whether the export is a folder: Storyboarder's project, a timeline with its frames."""
    from storyboard_cli.board import TIMELINES

    return fmt == "storyboarder" or (fmt in TIMELINES and not (options and options.links))


def destination(project: dict[str, Any], fmt: str, out: Path | None, force: bool,
                options: ExportOptions | None = None) -> Path:
    """Where the export goes: `out`, or a file (or folder) named after the project in `out`
    when that is a folder (the current one by default): TITLE-ID.EXT, a timeline's folder
    TITLE-ID-FORMAT. Refused when it exists, unless force; a FIFO or device as it is (see
    the module's note)."""
    try:
        return _destination(project, fmt, out, force, options)
    except OSError as exc:  # a name too long, a folder that cannot be read
        raise UsageError(f"cannot write {exc.filename or out}: {exc.strerror or exc}; "
                         "choose another path with -o") from None


def _destination(project: dict[str, Any], fmt: str, out: Path | None, force: bool,
                 options: ExportOptions | None) -> Path:
    folder_export = is_folder(fmt, options)
    name = file_stem(project) + (f"-{fmt}" if folder_export and fmt != "storyboarder"
                                 else WRITERS[fmt][1])
    if out is None:
        path = Path(name)
    elif out.is_dir() and not (folder_export
                               and (out / f"{out.name}{WRITERS[fmt][1] or '.storyboarder'}")
                               .exists()):
        path = out / name
    else:
        path = out
    path = path.absolute()
    kind = special_kind(path)
    if kind is not None:
        if kind not in STREAMS:
            raise UsageError(f"{path} is a {kind}, not a file an export can be written to; "
                             "choose another path with -o")
        if not single_file(fmt, options):
            writes = "a folder" if folder_export else "several files"
            raise UsageError(f"{path} is a {kind}: only a single-file export can be written "
                             f"into it, and {fmt} writes {writes}; choose another path with -o")
        return path
    if path.is_symlink():  # to a file or folder (or to nothing yet): its target is the place
        path = Path(os.path.realpath(path))
    for target in (path, *companions(fmt, path)):
        if target.exists() and not force:
            raise UsageError(f"{target} exists; pass --force to replace it, or -o another path")
        if target.is_dir() != folder_export and target.exists():
            raise UsageError(f"{target} is {'not ' if folder_export else ''}a folder; "
                             "choose another path with -o")
    if not path.parent.is_dir():
        raise UsageError(f"{path.parent} is not a folder")
    return path


# What an export is written into rather than replacing: a pipe's reader, a terminal.
STREAMS = ("FIFO", "character device")


def special_kind(path: Path) -> str | None:
    """What `path` is (through links) when it exists and is neither a regular file nor a
    folder: "FIFO", "character device", "socket", "block device"; else None."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    for test, kind in ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return None


def single_file(fmt: str, options: ExportOptions | None = None) -> bool:
    """Whether the export is one file (what a FIFO or standard output can take)."""
    return not is_folder(fmt, options) and not companions(fmt, Path("export"))


def companions(fmt: str, path: Path) -> list[Path]:
    """Files an export writes beside its main one."""
    if fmt == "mp4":
        from storyboard_cli.board.animatic import subtitles_path

        return [subtitles_path(path)]
    return []


def write(project: dict[str, Any], fmt: str, path: Path, panels: Iterable[Panel],
          options: ExportOptions, when: datetime | None = None) -> Exported:
    """Write the export of `project` to `path` (from destination()), all or nothing, laid out
    by `options` (checked: inputs.check_export)."""
    module, _, function = WRITERS[fmt][0].partition(".")
    writer = getattr(importlib.import_module(f"storyboard_cli.board.{module}"), function)
    result = Exported(files=[path, *companions(fmt, path)])
    work = work_folder(path)
    try:
        writer(project, sheet(project, when), counted(panels, result), work / path.name, options)
        place([(work / target.name, target) for target in result.files])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result


def work_folder(path: Path) -> Path:
    """A temporary folder to write the export to `path` in: beside it, on the same file
    system, so that moving it into place is atomic; for a FIFO or device, the system's."""
    beside = special_kind(path) is None
    try:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part",
                                     dir=path.parent if beside else None))
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}; choose another path "
                         "with -o") from None


def place(moves: list[tuple[Path, Path]]) -> None:
    """Put each finished file or folder where it goes: moved over a regular file or folder,
    copied into a FIFO or device (never replacing it)."""
    for source, target in moves:
        try:
            if special_kind(target) is not None:
                with open(source, "rb") as done, open(target, "wb") as into:
                    shutil.copyfileobj(done, into)
                continue
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(source, target)
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror or exc}") from None


def counted(panels: Iterable[Panel], result: Exported) -> Iterator[Panel]:
    for panel in panels:
        if panel.image is not None or panel.url is not None:
            result.frames += 1
        else:
            result.empty.append({"number": panel.shot["number"], "label": panel.shot["label"],
                                 "reason": panel.missing})
        yield panel


def upload(client: Any, cfg: S3Config, project: dict[str, Any], path: Path,
           expires: int) -> dict[str, str]:
    """Put the export in the bucket (a folder as a zip of it); its key and a presigned link."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    from storyboard_contract.keys import export_key
    from storyboard_contract.s3 import presign_get, storage_error

    with tempfile.TemporaryDirectory(prefix="storyboard-upload-") as tmp:
        source = zipped(path, Path(tmp)) if path.is_dir() else path
        key = export_key(cfg.prefix, project["id"], source.name, datetime.now(timezone.utc))
        extra = {"ContentType": CONTENT_TYPES.get(source.suffix)
                 or mimetypes.guess_type(source.name)[0] or "application/octet-stream",
                 "ContentDisposition": f"inline; filename*=UTF-8''{quote(source.name)}"}
        try:
            client.upload_file(str(source), cfg.bucket, key, ExtraArgs=extra)
        except (S3UploadFailedError, BotoCoreError, ClientError) as exc:
            raise storage_error(cfg, exc, f"uploading {source.name}") from None
    url, expires_at = presign_get(client, cfg.bucket, key, expires)
    return {"key": key, "url": url, "url_expires_at": expires_at}


def zipped(folder: Path, into: Path) -> Path:
    """folder as into/NAME.zip, the folder itself at the top of the archive."""
    target = into / f"{folder.name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for item in sorted(folder.rglob("*")):
            if item.is_file():
                archive.write(item, Path(folder.name) / item.relative_to(folder))
    return target
