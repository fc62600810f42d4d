"""Joins PDFs written by fpdf2 into one file as they come, holding one part at a time.

fpdf2 keeps a document's images, and then the whole file, in memory until it writes it, so
the board is made in parts of a bounded number of pages and each part's objects are copied
to the output as soon as it is done. fpdf2 writes a plain file (one classic cross-reference
table, no object streams, dictionaries before any stream data), so joining is renumbering:
every part's objects are copied with their references moved past the objects already
written; each part's page tree, catalog and document information are left out and one page
tree over all the pages, the first part's catalog and its information are written last.
"""

from __future__ import annotations

import re
from typing import BinaryIO

# Object numbers 1-3 are kept for what is written last and shared by all the pages.
PAGES, CATALOG, INFO = 1, 2, 3
REFERENCE = re.compile(rb"(?<![\w.])(\d+) 0 R(?!\w)")
OBJECT = re.compile(rb"(\d+) 0 obj\s")


class Joiner:
    """Writes a PDF to `out` from parts added in order (whole files made by fpdf2)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offsets: dict[int, int] = {}  # object number in the output: its byte offset
        self.kids: list[int] = []  # the pages in order
        self.next = INFO + 1
        # The first part's page tree, catalog (renumbered), information and identifier.
        self.first: tuple[bytes, bytes, bytes, bytes] | None = None

    def add(self, part: bytes) -> None:
        root, info, ids = trailer(part)
        start, objects = read_objects(part)
        pages = int(entry(objects[root], b"Pages"))
        numbers = {pages: PAGES, root: CATALOG, info: INFO}
        for old in sorted(objects):
            if old not in numbers:
                numbers[old] = self.next
                self.next += 1
        if self.first is None:
            self.out.write(part[:start])  # the header
            self.first = (objects[pages], renumbered(objects[root], numbers), objects[info],
                          ids)
        for old in sorted(objects):
            if numbers[old] > INFO:
                self.write_object(numbers[old], renumbered(objects[old], numbers))
        self.kids += [numbers[int(kid)] for kid in
                      re.findall(rb"(\d+) 0 R", entry(objects[pages], b"Kids"))]

    def close(self) -> None:
        """The shared page tree, catalog and information, the cross-reference table and
        the trailer."""
        assert self.first is not None, "nothing to join"
        tree, catalog, info, ids = self.first
        kids = b"\n".join(b"%d 0 R" % kid for kid in self.kids)
        tree = re.sub(rb"/Kids \[[^\]]*\]", lambda _: b"/Kids [" + kids + b"]", tree)
        tree = re.sub(rb"/Count \d+", b"/Count %d" % len(self.kids), tree)
        self.write_object(PAGES, tree)
        self.write_object(CATALOG, catalog)
        self.write_object(INFO, info)
        start = self.out.tell()
        size = self.next
        rows = [b"0000000000 65535 f "] + [b"%010d 00000 n " % self.offsets[n]
                                            for n in range(1, size)]
        self.out.write(b"xref\n0 %d\n" % size + b"\n".join(rows) + b"\n")
        self.out.write(b"trailer\n<<\n/Size %d\n/Root %d 0 R\n/Info %d 0 R\n%s>>\n"
                       b"startxref\n%d\n%%%%EOF\n" % (size, CATALOG, INFO, ids, start))

    def write_object(self, number: int, body: bytes) -> None:
        self.offsets[number] = self.out.tell()
        self.out.write(b"%d 0 obj\n" % number + body)


def trailer(part: bytes) -> tuple[int, int, bytes]:
    """The part's catalog and information object numbers and its file identifier (the
    trailer's /ID line, or nothing)."""
    tail = part[part.rindex(b"trailer"):]
    ids = re.search(rb"/ID \[[^\]]*\]\n", tail)
    return int(entry(tail, b"Root")), int(entry(tail, b"Info")), ids.group() if ids else b""


def read_objects(part: bytes) -> tuple[int, dict[int, bytes]]:
    """Where the first object starts, and each object's number: what follows `N 0 obj` up
    to the next object (or the cross-reference table), found from the table's offsets."""
    xref = int(part[part.rindex(b"startxref") + 9:].split()[0])
    table = part[xref:part.index(b"trailer", xref)].splitlines()
    starts = sorted(int(row.split()[0]) for row in table if row.split()[-1:] == [b"n"])
    objects = {}
    for start, end in zip(starts, [*starts[1:], xref], strict=True):
        header = OBJECT.match(part, start)
        assert header, f"no object at offset {start}"
        objects[int(header.group(1))] = part[header.end():end]
    return starts[0], objects


def entry(dictionary: bytes, key: bytes) -> bytes:
    """The value of /key in a dictionary: the number of a reference, or an array's inside."""
    found = re.search(rb"/" + key + rb"\s+(?:(\d+) 0 R|\[([^\]]*)\])", dictionary)
    assert found, f"/{key.decode()} not found"
    return found.group(1) or found.group(2)


def renumbered(body: bytes, numbers: dict[int, int]) -> bytes:
    """The object with its references renumbered; stream data is copied as it is."""
    cut = body.find(b"stream\n")
    head, data = (body, b"") if cut < 0 else (body[:cut], body[cut:])
    return REFERENCE.sub(lambda m: b"%d 0 R" % numbers[int(m.group(1))], head) + data
