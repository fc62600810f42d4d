"""Following a task until it ends, from the store (workers write progress there).

On a terminal: rich progress with one overall bar (shots done / total) and one bar per shot
being rendered, moving with its diffusion steps. Otherwise (piped, CI logs): plain lines on
stderr, one per change of state, never one per step.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from storyboard_cli.output import visible
from storyboard_cli.store.status import FINISHED, RenderStatus
from storyboard_contract.errors import Interrupted, WaitTimeout

if TYPE_CHECKING:
    from rich.console import Console

    from storyboard_cli.store import Store

POLL_S = 0.15


@dataclass(frozen=True)
class ShotState:
    shot_id: int
    index: int
    status: str
    step: int
    steps: int
    error: str | None
    state: str | None = None  # before the steps: "loading model sdxl"


@dataclass(frozen=True)
class Snapshot:
    task_id: str
    status: str
    error: str | None
    shots: tuple[ShotState, ...]
    warnings: tuple[str, ...] = ()  # each once, in the order they came

    @property
    def done(self) -> int:
        return sum(s.status == RenderStatus.DONE for s in self.shots)

    @property
    def total(self) -> int:
        return len(self.shots)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def to_json(self) -> dict[str, Any]:
        """The snapshot as plain data: what the events stream of `storyboard serve` sends,
        and from_json reads back (the CLI's bars against a remote server)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        return cls(data["task_id"], data["status"], data["error"],
                   tuple(ShotState(**shot) for shot in data["shots"]),
                   tuple(data.get("warnings") or ()))


def snapshot(store: Store, task_id: str) -> Snapshot:
    task = store.get_task(task_id)
    shots = tuple(
        ShotState(r["shot_id"], r["idx"], r["status"], r["step"] or 0, r["steps"] or 0, r["error"],
                  r["state"])
        for r in store.task_renders(task_id)
    )
    return Snapshot(task_id, task["status"], task["error"], shots,
                    tuple(json.loads(task["warnings"] or "[]")))


def poll(store: Store, task_id: str, interval: float = POLL_S) -> Iterator[Snapshot]:
    """Snapshots of a task from the store, one per interval, ending with a finished one."""
    while True:
        snap = snapshot(store, task_id)
        yield snap
        if snap.finished:
            return
        time.sleep(interval)


class Display(Protocol):
    def update(self, snap: Snapshot) -> None: ...
    def close(self) -> None: ...


def follow(
    snapshots: Iterable[Snapshot], timeout: float | None = None, display: Display | None = None
) -> Snapshot:
    """Show a task's progress until it ends; returns its last snapshot.

    Raises WaitTimeout when timeout seconds pass first, Interrupted on Ctrl+C: either way
    the task keeps running, and the message says how to follow or cancel it.
    """
    display = display if display is not None else default_display()
    deadline = None if timeout is None else time.monotonic() + timeout
    snap: Snapshot | None = None
    try:
        for snap in snapshots:
            display.update(snap)
            if snap.finished:
                return snap
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(
                    f"task {snap.task_id} is still {snap.status} after {timeout:g} s "
                    f"({snap.done}/{snap.total} shots); it keeps running in the background: "
                    f"storyboard status {snap.task_id} --watch"
                )
    except KeyboardInterrupt:
        if snap is None:
            raise
        raise interrupted(snap.task_id, f"{snap.status}, {snap.done}/{snap.total} shots"
                          ) from None
    finally:
        display.close()
    raise WaitTimeout("the progress stream ended before the task finished"
                      + (f"; follow it: storyboard status {snap.task_id} --watch" if snap else ""))


def interrupted(task_id: str, state: str = "") -> Interrupted:
    """What Ctrl+C while waiting says: the task goes on, and how to follow or stop it."""
    where = f" ({state})" if state else ""
    return Interrupted(
        f"stopped waiting; task {task_id}{where} keeps running in the background. Follow it: "
        f"storyboard status {task_id} --watch; stop it: storyboard cancel {task_id}"
    )


def default_display() -> Display:
    from storyboard_cli import output

    console = output.stderr
    return RichDisplay(console) if console.is_terminal else PlainDisplay(sys.stderr)


class PlainDisplay:
    """One line per change: task status, planning done, each shot's status."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.status: str | None = None
        self.total = 0
        self.shots: dict[int, tuple[str, str | None]] = {}
        self.done = 0
        self.warned = 0

    def say(self, line: str) -> None:
        self.stream.write(visible(line) + "\n")
        self.stream.flush()

    def update(self, snap: Snapshot) -> None:
        tid = snap.task_id[:8]
        if snap.total != self.total:
            self.total = snap.total
            self.say(f"task {tid}: {snap.total} shot(s) to render")
        for warning in snap.warnings[self.warned:]:
            self.say(f"task {tid}: warning: {warning}")
        self.warned = len(snap.warnings)
        for shot in snap.shots:
            if self.shots.get(shot.shot_id) == (shot.status, shot.state):
                continue
            self.shots[shot.shot_id] = (shot.status, shot.state)
            label = f"task {tid}: shot {shot.index + 1}"
            if shot.state is not None and shot.status == RenderStatus.RUNNING:
                self.say(f"{label}: {shot.state}")
            elif shot.status == RenderStatus.DONE:
                self.done += 1
                self.say(f"{label} done ({self.done}/{snap.total})")
            elif shot.status in (RenderStatus.RETRYING, RenderStatus.FAILED):
                self.say(f"{label} {shot.status}: {shot.error}")
            elif shot.status == RenderStatus.RUNNING:
                self.say(f"{label} rendering")
        if snap.status != self.status:
            self.status = snap.status
            detail = f": {snap.error}" if snap.error else ""
            self.say(f"task {tid}: {snap.status}{detail}")

    def close(self) -> None:
        pass


class RichDisplay:
    """An overall bar and one bar per shot in progress (removed when the shot ends)."""

    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, transient=False,
        )
        self.progress.start()
        self.overall = self.progress.add_task("planning", total=None)
        self.bars: dict[int, Any] = {}
        self.warned = 0

    def update(self, snap: Snapshot) -> None:
        p = self.progress
        for warning in snap.warnings[self.warned:]:
            p.console.print(f"warning: {visible(warning)}", markup=False, style="yellow",
                            soft_wrap=True)
        self.warned = len(snap.warnings)
        if snap.total:
            p.update(self.overall, description=f"shots ({snap.status})", total=snap.total,
                     completed=snap.done)
        else:
            p.update(self.overall, description=f"planning ({snap.status})")
        for shot in snap.shots:
            active = shot.status in (RenderStatus.RUNNING, RenderStatus.RETRYING)
            bar = self.bars.get(shot.shot_id)
            if not active:
                if bar is not None:
                    p.remove_task(bar)
                    del self.bars[shot.shot_id]
                continue
            label = f"  shot {shot.index + 1}"
            if shot.status == RenderStatus.RETRYING:
                label += f" [retrying: {visible(shot.error)}]"
            elif shot.state is not None:
                label += f" [{visible(shot.state)}]"
            if bar is None:
                self.bars[shot.shot_id] = p.add_task(label, total=shot.steps or None,
                                                     completed=shot.step)
            else:
                p.update(bar, description=label, total=shot.steps or None, completed=shot.step)

    def close(self) -> None:
        self.progress.stop()
