"""What Linux's /proc says of a process: its CPU time, memory and children. Tests use it to
find a daemon's render process and what it spent; benchmarks (bench/harness.py) to split a
run's CPU time by process."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> tuple[str, list[str]]:
    """(comm, the fields after it: state is [0], ppid [1], utime [11], stime [12])."""
    text = Path(f"/proc/{pid}/stat").read_text()
    name, rest = text.split("(", 1)[1].rsplit(")", 1)
    return name, rest.split()


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far; with children, also that of the children
    it has waited for (cutime + cstime)."""
    fields = _stat(pid)[1]
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICK


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU time of each live thread of a process, by its OS thread id."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = Path(task, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return seconds


def rss_bytes(pid: int) -> int:
    """Resident memory now."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE


def io_syscalls(pid: int) -> tuple[int, int]:
    """(read, write) system calls so far: for a server, about one read per request or
    pipeline of requests from a client (/proc/PID/io: syscr, syscw)."""
    fields = dict(line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())
    return int(fields["syscr"]), int(fields["syscw"])


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, every core together."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return (sum(ticks) - idle) / _TICK, sum(ticks) / _TICK


def children_map() -> dict[int, list[int]]:
    """Each live process's children, from one pass over /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            children.setdefault(int(_stat(int(entry.name))[1][1]), []).append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return children


def descendants(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """Every live process under pid (children, theirs, ...), pid not included; children:
    a children_map() to reuse."""
    children = children_map() if children is None else children
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def child_named(pid: int, comm: str) -> int:
    """The pid of pid's child whose name (/proc/PID/comm) is comm."""
    for child in descendants(pid):
        try:
            name, fields = _stat(child)
        except OSError:
            continue
        if name == comm and int(fields[1]) == pid:
            return child
    raise LookupError(f"no process {comm!r} under {pid}")
