"""export: the storyboard as a file people look at, print or send."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from storyboard_cli import output
from storyboard_cli.board import FORMATS
from storyboard_cli.board.options import PAPERS, ExportOptions
from storyboard_cli.commands.common import (
    PATH,
    PROJECT,
    Command,
    ConfigAndService,
    argument,
    command,
    service_options,
)
from storyboard_contract.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from storyboard_cli.service import Service


# `-o -`: the export on standard output.
STANDARD_OUTPUT = Path("-")


@click.command("export", cls=Command)
@argument("project", "Project id or exact title.", type=PROJECT)
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="html: one self-contained page; pdf: pages of panels; mp4: an animatic "
                   "with subtitles (and an .srt); storyboarder: a Storyboarder project "
                   "folder; zip: the PNGs and the shot list; otio, edl, fcp7xml, fcpxml: a "
                   "timeline for an editor (OpenTimelineIO, CMX 3600 EDL, Final Cut Pro 7 / "
                   "Premiere XML, Final Cut Pro X XML) in a folder with its frames; csv: the "
                   "shot list as a table.")
@click.option("-o", "--output", "out", type=PATH,
              help="File (or folder) to write, or - for standard output (a single-file "
                   "format) [default: TITLE-ID.EXT in the current folder].")
@click.option("--layout", default=ExportOptions.layout, show_default=True, metavar="COLSxROWS",
              help="pdf: panels per page.")
@click.option("--paper", type=click.Choice(PAPERS), default=ExportOptions.paper,
              show_default=True, help="pdf: paper size.")
@click.option("--portrait", is_flag=True,
              help=f"pdf: portrait pages [default: {ExportOptions.orientation}].")
@click.option("--links", is_flag=True,
              help="otio, edl, fcp7xml, fcpxml: the frames as presigned links in the timeline "
                   "(one file), not files in a folder beside it.")
@click.option("--force", is_flag=True, help="Replace the output if it exists.")
@click.option("--upload", is_flag=True,
              help="Also put the export in the bucket and print a presigned link to it.")
@service_options
@command
def export(
    project: str, fmt: str, out: Path | None, layout: str, paper: str, portrait: bool,
    links: bool, force: bool, upload: bool, config: Path | None, json_out: bool, debug: bool,
) -> None:
    """Export a project's storyboard: frames read from the bucket by their keys, each with its
    number, shot size, camera move, duration, action and dialogue. A shot without an image is
    drawn as a marked empty frame.

    \b
    Example: storyboard export 1 --format pdf --layout 2x2 --upload
             storyboard export 1 --format fcp7xml -o cut     # cut/cut.xml, cut/frames/
             storyboard export 1 --format csv -o shots.csv
    """
    options = ExportOptions(paper, "portrait" if portrait else ExportOptions.orientation, layout,
                            links)
    service = ConfigAndService(config).service
    if out == STANDARD_OUTPUT:
        result = exported_to_stdout(service, project, fmt, options, upload=upload)
        print_export(result, output.stderr)  # standard output holds the export
        return
    result = exported(service, project, fmt, out, options, force=force, upload=upload)
    if json_out:
        output.print_json(result)
        return
    print_export(result)


def exported(service: Service, project: str, fmt: str, out: Path | None = None,
             options: ExportOptions | None = None, **flags: bool) -> dict[str, Any]:
    """service.export, showing the frames' progress as they are read."""
    progress = FrameProgress(service.export_progress_unit)
    try:
        return service.export(project, fmt, out, options, progress=progress.update, **flags)
    finally:
        progress.close()


def exported_to_stdout(service: Service, project: str, fmt: str, options: ExportOptions,
                       upload: bool = False) -> dict[str, Any]:
    """The export of a single-file format written to standard output (`-o -`), through a
    temporary folder; the export object, its path "-"."""
    import shutil
    import tempfile

    from storyboard_cli.board.export import is_folder, single_file

    if not single_file(fmt, options):
        raise UsageError(f"-o - writes a single file to standard output; {fmt} writes "
                         f"{'a folder' if is_folder(fmt, options) else 'several files'}: give "
                         "a path with -o")
    with tempfile.TemporaryDirectory(prefix="storyboard-export-") as folder:
        result = exported(service, project, fmt, Path(folder), options, upload=upload)
        with open(result["path"], "rb") as done:
            shutil.copyfileobj(done, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    return {**result, "path": "-", "files": ["-"]}


def print_export(result: dict[str, Any], out: Console | None = None) -> None:
    """Where the export went (standard output: path "-"), what it holds, and its link."""
    out = out or output.stdout
    empty = result["empty"]
    note = f", {len(empty)} without an image" if empty else ""
    where = "standard output" if result["path"] == "-" else result["path"]
    out.print(f"Wrote {where} ({result['format']}, {result['shots']} shots{note}, "
              f"{readable_size(result['bytes'])})", markup=False, soft_wrap=True)
    for extra in result["files"][1:]:
        out.print(f"  and {extra}", markup=False, soft_wrap=True)
    for shot in empty[:10]:
        out.print(f"  shot {shot['label']}: {shot['reason']}", markup=False, soft_wrap=True)
    if len(empty) > 10:
        out.print(f"  … and {len(empty) - 10} more", markup=False)
    if result.get("url"):
        out.print(f"Link (valid until {result['url_expires_at']}): {result['url']}",
                  markup=False, soft_wrap=True)


def readable_size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{max(1, round(n / 1024))} KiB"


class FrameProgress:
    """Frames read from the bucket, or (unit "bytes", against a remote server) the export
    downloaded: a bar on a terminal; piped, a line at the start and at each quarter."""

    def __init__(self, unit: str = "frames") -> None:
        self.unit = unit
        self.bar: Progress | None = None
        self.task: Any = None
        self.said = -1

    def update(self, done: int, total: int) -> None:
        if total == 0:
            return
        console = output.stderr
        downloading = self.unit == "bytes"
        if console.is_terminal:
            if self.bar is None:
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    MofNCompleteColumn,
                    Progress,
                    TimeElapsedColumn,
                )

                self.bar = Progress("downloading" if downloading else "reading frames",
                                    BarColumn(),
                                    DownloadColumn() if downloading else MofNCompleteColumn(),
                                    TimeElapsedColumn(), console=console, transient=True)
                self.bar.start()
                self.task = self.bar.add_task(self.unit, total=total)
            self.bar.update(self.task, completed=done, total=total)
            return
        quarter = done * 4 // total
        if quarter != self.said:
            self.said = quarter
            if downloading:
                line = (f"downloading {readable_size(total)} from the server" if done == 0
                        else f"{readable_size(done)} of {readable_size(total)} downloaded")
            else:
                line = (f"reading {total} frames from the bucket" if done == 0
                        else f"{done}/{total} frames read")
            sys.stderr.write(f"export: {line}\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def register(group: click.Group) -> None:
    group.add_command(export)
