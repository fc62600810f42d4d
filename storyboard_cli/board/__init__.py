"""Exports of a project's storyboard, one module per format.

    html.py          one self-contained page: a header and a grid of panels (the same template
                     as the web page of `storyboard serve`, which links the frames instead)
    pdf.py           pages of panels in a grid, like Storyboarder's PDF export
    animatic.py      an MP4: each frame held for its shot's duration, dialogue as subtitles
    storyboarder.py  a Wonder Unit Storyboarder project, the frames on the reference layer
    archive.py       a zip of the frames named by shot number and the shot list as JSON
    editorial.py     a timeline for an editor (OpenTimelineIO: .otio, CMX 3600 EDL, Final Cut
                     Pro 7 XML, Final Cut Pro X XML), a clip per panel, the frames beside it
    shotlist.py      the shot list as a CSV table
    options.py       ExportOptions: paper, orientation, layout, links, declared once

Every format is written from the project object (views.project_view) and a stream of panels
(panels.py): the frames are read from the bucket by their keys a few at a time, so an export
of 10,000 shots never holds every image in memory. export.py ties them together.
"""

FORMATS = ("html", "pdf", "mp4", "storyboarder", "zip", "otio", "edl", "fcp7xml", "fcpxml",
           "csv")
# The editors' timelines: a folder of the timeline and its frames, or with `links` one file.
TIMELINES = ("otio", "edl", "fcp7xml", "fcpxml")
