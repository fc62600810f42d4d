"""All benchmarks of issue 6, one after another; writes bench/results.md and prints it.

  startup.py   CLI start-up against `python -c pass`, slow imports         (item 4)
  scale.py     a project of 10,000 shots                                    (item 5)
  batching.py  raw pipe() loop vs the daemon at batch 1 and batched         (item 3)
  overhead.py  overhead per shot a/b/c and the duty cycle, sketch+diffusers (items 1, 2)
  export.py    `storyboard export` of a 10,000-shot project: time, peak memory (issue 10)
  api.py       `storyboard serve`: GET /api/tasks/{id} p50/p99 under 50 clients (issue 11)
  outage.py    renders per shot through a 20 s bucket outage, kept images off/on (issue 14)
  fleet.py     one host feeding 1-16 simulated GPU daemons: shots/s, CPU per shot (issue 24)

Each part also runs alone (`python bench/<part>.py`). Start-up runs first, while nothing
else of the benchmark is running. `make bench` runs this with the defaults (about 14 minutes
on 2 cores, 4 of them the export's and 6 the fleet's); --quick uses small sizes, for checking
the scripts.

A full run also refreshes the summary in README.md (between the bench markers): every
target with its figure, and the machine it ran on.

Run: .venv/bin/python bench/run.py [--quick] [--out bench/results.md]
"""

from __future__ import annotations

import argparse
import compileall
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import api
import batching
import export
import fleet
import harness
import outage
import overhead
import scale
import startup

TARGET_HELP_RATIO = 3.0
REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
README_BEGIN, README_END = "<!-- bench:begin -->", "<!-- bench:end -->"
# The target lines that harness.verdict writes.
VERDICT = re.compile(r"^- (?P<name>.+): (?P<value>\S+) \(target (?P<target>[^)]+)\): "
                     r"\*\*(?P<met>met|missed)\*\*$", re.M)


def startup_markdown(r: dict[str, Any]) -> tuple[str, list[bool]]:
    base = r["median_ms"]["python -c pass"]
    rows = [[f"`{name}`", f"{value:.0f}", f"{value / base:.2f}"]
            for name, value in r["median_ms"].items()]
    text = (f"Median of {startup.REPEAT} runs each, interleaved:\n\n"
            + harness.table(["command", "ms", "× `python -c pass`"], rows) + "\n\n")
    line, ok = harness.verdict("`storyboard --help` / `python -c pass`", r["ratio_help"],
                               TARGET_HELP_RATIO, False)
    text += f"- {line}\n\nModules imported by `import storyboard_cli.cli` taking over 10 ms " \
            "(cumulative, `python -X importtime`):\n\n"
    # Nested imports are indented by importtime; the cumulative figure includes the nested.
    imports = [[f"`{name.strip()}`", f"{value:.1f}"]
               for name, value in sorted(r["slow_imports"], key=lambda x: -x[1])]
    text += (harness.table(["module", "ms"], imports) if imports else "none") + "\n"
    return text, [ok]


def sections(quick: bool) -> list[tuple[str, Callable[[], tuple[str, list[bool]]]]]:
    if quick:
        startup.REPEAT = 3
    return [
        ("4. CLI start-up", lambda: startup_markdown(startup.run())),
        ("5. Scale", lambda: scale.markdown(scale.run(1_000 if quick else 10_000,
                                                       2 if quick else 5))),
        ("3. Batching (tiny diffusers pipeline)",
         lambda: batching.markdown(batching.run(8 if quick else 24, 1 if quick else 5))),
        ("1–2. Overhead per shot and GPU duty cycle",
         lambda: overhead.markdown(overhead.run(8 if quick else 40, 1 if quick else 5))),
        ("6. Export of the scale project",
         lambda: export.markdown(export.run(*((500, 100, 10) if quick else ())))),
        ("7. HTTP API overhead per request",
         lambda: api.markdown(api.run(500 if quick else 4_000))),
        ("8. Renders per shot through a bucket outage",
         lambda: outage.markdown(outage.run(*((12, 4) if quick else ())))),
        ("9. One host feeding a fleet of simulated GPUs",
         lambda: fleet.markdown(fleet.run(fleet.QUICK if quick else fleet.Settings()))),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the scripts")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results.md")
    args = parser.parse_args()

    started = time.perf_counter()
    # Bytecode for the project's modules, as an installed package has it: start-up figures
    # must not depend on whether this environment lets Python write it (PYTHONDONTWRITEBYTECODE
    # would make every run compile what changed since).
    for package in ("storyboard_cli", "storyboard_contract", "gpu_daemon"):
        compileall.compile_dir(str(REPO / package), quiet=1)
    box = harness.machine()
    parts, summary = [], []
    for title, fn in sections(args.quick):
        t0 = time.perf_counter()
        try:
            text, met = fn()
        except Exception:  # noqa: BLE001 - one broken part must not lose the others' figures
            text, met = f"```\n{traceback.format_exc()}```\n", [False]
        took = time.perf_counter() - t0
        parts.append(f"## {title}\n\n{text}\n_({took:.0f} s)_\n")
        summary.append([title, f"{sum(met)} of {len(met)}"])
        print(f"{title}: done in {took:.0f} s", flush=True)

    total = time.perf_counter() - started
    head = [
        "# Benchmark results",
        "",
        f"Written by `make bench` (bench/run.py{' --quick' if args.quick else ''}) in "
        f"{total / 60:.1f} minutes. Every ratio is measured within one run, the variants "
        "interleaved round by round so that the machine's noise hits them alike; absolute "
        "times are beside them and hold only for this machine.",
        "",
        harness.table(["machine", ""], [[k, v] for k, v in box.items()]),
        "",
        harness.table(["part", "targets met"], summary),
        "",
    ]
    report = "\n".join(head) + "\n" + "\n".join(parts)
    args.out.write_text(report, encoding="utf-8")
    print(report)
    if not args.quick:
        update_readme(readme_summary(report, box, total / 60))


def readme_summary(report: str, box: dict[str, Any], minutes: float) -> str:
    rows = [[m["name"], m["value"], m["target"], m["met"]] for m in VERDICT.finditer(report)]
    return "\n".join([
        README_BEGIN,
        f"Last `make bench` ({box['date']}, {minutes:.1f} min): {box['cpu']}, {box['cores']} "
        f"cores, {box['memory']}, Python {box['python']}, torch {box['torch']}, no GPU. "
        "Ratios are measured within one run; the tables and the definitions are in "
        "[bench/results.md](bench/results.md).",
        "",
        harness.table(["figure", "measured", "target", ""], rows),
        README_END,
    ])


def update_readme(summary: str) -> None:
    text = README.read_text(encoding="utf-8")
    start, end = text.find(README_BEGIN), text.find(README_END)
    if start < 0 or end < start:
        print(f"{README}: no bench markers; summary not written")
        return
    README.write_text(text[:start] + summary + text[end + len(README_END):], encoding="utf-8")


if __name__ == "__main__":
    main()
