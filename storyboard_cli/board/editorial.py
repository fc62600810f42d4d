"""The board for an editor: a timeline of one clip per panel, written through OpenTimelineIO.

Formats, each by OTIO's adapter for it: `otio` (OTIO's own JSON, which keeps everything),
`edl` (CMX 3600, otio-cmx3600-adapter), `fcp7xml` (Final Cut Pro 7 XML, which Premiere Pro,
DaVinci Resolve and Avid import too; otio-fcp-adapter) and `fcpxml` (Final Cut Pro X,
otio-fcpx-xml-adapter).

The timeline, named after the project, has one video track. Each panel is a clip named by its
shot and scene ("Shot 3.2 - EXT. REEF - NIGHT"), as long as the animatic holds it: the frames
are cut by sheet.FrameClock at 24 fps, so the clips add up to the animatic's length, frame for
frame. A clip's media is its frame: by default a PNG in `frames/` beside the timeline, named by
shot number as in the zip export, the path relative so the folder moves as one; with `links`,
the frame's presigned link and no folder. A shot without a frame gets a marked placeholder
frame (with `links`, a missing reference).

Markers at the start of each clip say what an editor looks for: the scene (its number and
heading, on its first shot, red), the shot size and camera move (blue) and each line of
dialogue with its speaker (green). The clip's metadata ("storyboard") holds the rest of the
shot too (action, characters, prompt, seed, duration). OTIO's JSON keeps all of it; the EDL
keeps the markers as LOC comments (the adapter writes them in capitals) and names the
frame's file in a comment; both XML formats keep the markers with the clips, not the
metadata. Track-level markers would be lost by both XML adapters, so scenes are clip markers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from storyboard_cli.board.archive import frame_name
from storyboard_cli.board.panels import Panel
from storyboard_cli.board.sheet import (
    FPS,
    FrameClock,
    Sheet,
    find_font,
    speech,
)

if TYPE_CHECKING:
    import opentimelineio as otio

    from storyboard_cli.board.options import ExportOptions

FRAMES = "frames"
TRACK = "Storyboard"
# A clip's media: the target URL of a panel's frame, or None when it has none.
Media = Callable[[Panel], "str | None"]


def write_timeline(adapter: str, extension: str, project: dict[str, Any], sheet: Sheet,
                   panels: Iterable[Panel], path: Path, options: ExportOptions) -> None:
    """The timeline through OTIO's `adapter`: at `path` with links, else as
    `path/NAME{extension}` with its frames in `path/frames/`."""
    import opentimelineio as otio

    if options.links:
        target, media = path, linked
    else:
        (path / FRAMES).mkdir(parents=True)
        target, media = path / f"{path.name}{extension}", framed(project, path / FRAMES)
    otio.adapters.write_to_file(timeline(project, sheet, panels, media), str(target),
                                adapter_name=adapter)


# The writers export.WRITERS names: OTIO's adapter for each format, and its file's extension.
write_otio = partial(write_timeline, "otio_json", ".otio")
write_edl = partial(write_timeline, "cmx_3600", ".edl")
write_fcp7xml = partial(write_timeline, "fcp_xml", ".xml")
write_fcpxml = partial(write_timeline, "fcpx_xml", ".fcpxml")


def linked(panel: Panel) -> str | None:
    return panel.url


def framed(project: dict[str, Any], folder: Path) -> Media:
    """Writes each panel's frame (a placeholder where it has none) into `folder`; its path
    relative to the timeline."""
    count = len(project["shots"])

    def media(panel: Panel) -> str:
        name = frame_name(panel.shot["number"], count)
        (folder / name).write_bytes(panel.image if panel.image is not None
                                    else placeholder(panel, project))
        return f"{FRAMES}/{name}"

    return media


def placeholder(panel: Panel, project: dict[str, Any]) -> bytes:
    """The animatic's marked empty frame, as a PNG of the project's frame size."""
    import io

    from storyboard_cli.board.animatic import backdrop

    out = io.BytesIO()
    backdrop(panel, project["width"], project["height"], find_font()).save(out, "PNG")
    return out.getvalue()


def timeline(project: dict[str, Any], sheet: Sheet, panels: Iterable[Panel], media: Media
             ) -> otio.schema.Timeline:
    """One clip per panel that lasts a frame or more, in order (see the module's doc)."""
    import opentimelineio as otio

    track = otio.schema.Track(name=TRACK, kind=otio.schema.TrackKind.Video)
    frames = FrameClock(FPS)
    for panel in panels:
        first, end = frames.span(panel.shot["duration"])
        if end > first:
            track.append(clip(panel, end - first, media(panel)))
    cut = otio.schema.Timeline(name=sheet.title,
                               global_start_time=otio.opentime.RationalTime(0, FPS))
    cut.tracks.append(track)
    cut.metadata["storyboard"] = {"project_id": project["id"], "aspect": sheet.aspect,
                                  "style": sheet.style, "running_time": sheet.running_time}
    return cut


def clip_name(shot: dict[str, Any]) -> str:
    """Shot 3.2 - EXT. REEF - NIGHT; Shot 7 in prose."""
    return f"Shot {shot['label']}" + (f" - {shot['scene_heading']}" if shot["scene_heading"]
                                      else "")


def clip(panel: Panel, frames: int, url: str | None) -> otio.schema.Clip:
    import opentimelineio as otio

    shot = panel.shot
    length = otio.opentime.TimeRange(otio.opentime.RationalTime(0, FPS),
                                      otio.opentime.RationalTime(frames, FPS))
    if url is None:
        reference: Any = otio.schema.MissingReference(
            name=clip_name(shot), metadata={"storyboard": {"missing": panel.missing}})
    else:
        reference = otio.schema.ExternalReference(target_url=url, available_range=length)
    item = otio.schema.Clip(name=clip_name(shot), media_reference=reference,
                            source_range=length)
    item.metadata["storyboard"] = {
        key: shot[key] for key in ("number", "label", "scene", "scene_heading", "camera",
                                   "move", "characters", "action", "dialogue", "duration",
                                   "prompt", "seed")}
    for name, color, kind in markers(shot):
        item.markers.append(otio.schema.Marker(
            name=name, color=color, metadata={"storyboard": {"kind": kind}},
            marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(0, FPS),
                                                 otio.opentime.RationalTime(0, FPS))))
    return item


def markers(shot: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(name, colour, kind) of a clip's markers: its scene on a scene's first shot, its
    framing, each spoken line."""
    import opentimelineio as otio

    colors = otio.schema.MarkerColor
    found = []
    if shot["scene_shot"] == 1:
        heading = f": {shot['scene_heading']}" if shot["scene_heading"] else ""
        found.append((f"Scene {shot['scene']}{heading}", colors.RED, "scene"))
    moving = f", {shot['move']}" if shot["move"] != "static" else ""
    found.append((f"{shot['camera']}{moving}", colors.BLUE, "framing"))
    found += [(speech(line), colors.GREEN, "dialogue") for line in shot["dialogue"]]
    return found
