"""How an export lays the board out, with its defaults, declared once: the CLI's options, the
export route's query, the remote client's request, the service and the PDF writer all take an
ExportOptions. A plain dataclass, so the CLI reads the defaults at start-up for its --help and
FastAPI reads its fields as the export route's query parameters.

The PDF has its page choices, the editors' timelines `links`; inputs.check_export checks them
for every format.
"""

from __future__ import annotations

from dataclasses import dataclass

# Paper sizes in mm, landscape (the PDF writer turns them for portrait).
PAPER_MM = {"a4": (297.0, 210.0), "letter": (279.4, 215.9)}
PAPERS = tuple(PAPER_MM)
ORIENTATIONS = ("landscape", "portrait")
MAX_GRID = 6  # columns, and rows, of panels on a page at most


@dataclass(frozen=True)
class ExportOptions:
    """pdf: the paper, its orientation and the panels a page holds, COLUMNSxROWS. otio, edl,
    fcp7xml, fcpxml: `links`, the frames as presigned links in the timeline instead of files in
    a folder beside it."""

    paper: str = "a4"
    orientation: str = "landscape"
    layout: str = "3x2"
    links: bool = False

    @property
    def grid(self) -> tuple[int, int]:
        """(columns, rows) of a checked layout (inputs.check_export writes it as CxR)."""
        columns, _, rows = self.layout.partition("x")
        return int(columns), int(rows)
