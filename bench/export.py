"""Export of a 10,000-shot project (issue 10): `storyboard export` as a user runs it (a CLI
process), its wall time and peak memory (the process's VmHWM, its resident high-water mark).

The project: 10,000 planned shots (action, and dialogue on every third), every one rendered,
its frame a PNG in a real SeaweedFS bucket under its own key: the sketch backend's 16:9 panel
at the default frame size (680 × 384). The exporters stream: the frames are read from the
bucket a few at a time and written out one by one.

- html and zip of all 10,000 shots, and html of a small project as the baseline that shows
  what 10,000 shots add to the peak;
- pdf of all 10,000 (PDF_SHOTS, the target's count; about 3.5 minutes here, `--pdf-shots 1000`
  for a quicker look): made in parts of 50 pages (the PDF library keeps a part's images until
  it writes it) joined as each is done; each of these frames has the shot's number stamped
  on it, since the PDF stores a repeated image only once;
- mp4 (the animatic, 24 fps) and storyboarder of the first SMALL shots: they encode every
  frame of the film or write three images per board, so 10,000 shots would take tens of
  minutes here; their cost per shot and their flat memory (one frame at a time) say what a
  larger project costs.

Run alone: .venv/bin/python bench/export.py [--shots 10000] [--pdf-shots 10000] [--small 50]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import harness

FRAME = (680, 384)  # 16:9 at the default 512 × 512 pixel budget
VARIANTS = 20
# Issue 24: the PDF of 10,000 shots within this peak.
TARGET_PDF_SHOTS = 10_000
PDF_SHOTS = TARGET_PDF_SHOTS
TARGET_PDF_MIB = 250
SMALL = 50
TEXT = ("In the {}th hour the keeper climbs the spiral stairs, lantern in hand, while the storm "
        "throws spray against the glass and the bell rings far away.")


def base_frames() -> list[Any]:
    """Sketch panels as the daemon draws them (different shot sizes and people)."""
    from gpu_daemon.images import RenderJob
    from gpu_daemon.images.sketch import SketchBackend
    from storyboard_contract.typeset import find_cjk_font

    backend = SketchBackend(find_cjk_font())
    cameras = ("wide", "medium", "close-up", "full", "medium close-up")
    jobs = [RenderJob(prompt="p", negative_prompt="", seed=k, width=FRAME[0], height=FRAME[1],
                      steps=1, guidance_scale=1.0, index=k, camera=cameras[k % len(cameras)],
                      description=TEXT.format(k), characters=("Tom",) * (k % 3))
            for k in range(VARIANTS)]
    return backend.render(jobs, lambda step, steps: None)


def stamped(frame: Any, number: int) -> bytes:
    from PIL import ImageDraw

    image = frame.copy()
    ImageDraw.Draw(image).text((FRAME[0] - 60, FRAME[1] - 24), f"#{number}", fill=(40, 40, 40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def planned(task_id: str, n: int) -> list[dict[str, Any]]:
    from storyboard_cli.tasks.jobs import planned_row
    from storyboard_contract.wire import DialogueLine, PlannedShot

    return [planned_row(task_id, PlannedShot(
        index=i, description=TEXT.format(i), action=TEXT.format(i), camera="medium",
        prompt="medium shot, " + TEXT.format(i), duration=4.0,
        dialogue=[DialogueLine(speaker="Tom", line=f"Hold the light steady, {i}")]
        if i % 3 == 0 else [])) for i in range(n)]


def build(store: Any, s3: Any, shots: int, subsets: dict[str, int]) -> dict[str, Any]:
    """The big project, every frame uploaded under its own key, and smaller projects (by name)
    showing its first frames; their ids and the bytes of PNG in the bucket.

    The frames of the first max(subsets) shots are each made unique (the PDF stores a repeated
    image once); the rest repeat the base frames byte for byte, which costs html and zip the
    same and keeps the setup short."""
    big = store.create_project("scale", "A long story. " * 100, "movie", "16:9")
    task = store.create_task("storyboard", big["id"])
    store.save_plan(task["id"], big["id"], planned(task["id"], shots), with_renders=True)
    rows = store._query("select id, idx from shots where task_id = ? order by idx", [task["id"]])
    frames = base_frames()
    plain = [stamped(frame, 0) for frame in frames]
    unique = max(subsets.values(), default=0)
    client = s3.client()

    def upload(row: dict[str, Any]) -> tuple[str, int, int]:
        k = row["idx"]
        data = stamped(frames[k % VARIANTS], k + 1) if k < unique else plain[k % VARIANTS]
        key = f"projects/{big['id']}/shots/{row['id']}/{task['id']}.png"
        client.put_object(Bucket=s3.bucket, Key=key, Body=data, ContentType="image/png")
        return key, row["id"], len(data)

    with ThreadPoolExecutor(8) as pool:
        uploaded = list(pool.map(upload, rows))
    mark_rendered(store, task["id"], [(key, shot_id) for key, shot_id, _ in uploaded])
    ids = {"all": big["id"]}
    for name, n in subsets.items():
        part = store.create_project(f"scale-{name}", "A story.", "movie", "16:9")
        part_task = store.create_task("storyboard", part["id"])
        store.save_plan(part_task["id"], part["id"], planned(part_task["id"], n),
                        with_renders=True)
        part_rows = store._query("select id from shots where task_id = ? order by idx",
                                 [part_task["id"]])
        mark_rendered(store, part_task["id"], [(key, row["id"]) for (key, _, _), row
                                               in zip(uploaded, part_rows, strict=False)])
        ids[name] = part["id"]
    return {"ids": ids, "png_bytes": sum(size for _, _, size in uploaded)}


def mark_rendered(store: Any, task_id: str, keys: list[tuple[str, int]]) -> None:
    """Setup, not measured: what 10,000 render jobs would have written, in one statement."""
    with store._write() as c:
        c.executemany(f"update shots set image_key = ?, width = {FRAME[0]}, "
                      f"height = {FRAME[1]} where id = ?", keys)
        c.execute("update renders set status = 'done' where task_id = ?", [task_id])
        c.execute("update tasks set status = 'succeeded' where id = ?", [task_id])


# The CLI, run so that it reports its own peak memory when it exits. Not ru_maxrss: Linux
# counts a child's pages from before exec in it (a child of this process, 140 MiB by then,
# would read at least that); VmHWM is the high-water mark of the process's own memory.
PEAK_WRAPPER = """
import atexit, os, sys
def peak():
    with open("/proc/self/status") as status:
        kib = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(kib)
atexit.register(peak)
from storyboard_cli.cli import main
sys.argv[0] = "storyboard"
main()
"""


def measure(args: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    """`storyboard ARGS --json`: its wall time, peak memory (bytes) and JSON answer."""
    peak_file = cwd / "peak.kib"
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *args, "--json"],
                          env={**env, "BENCH_PEAK_FILE": str(peak_file)}, cwd=cwd,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"storyboard {' '.join(args)}: exit {done.returncode}: "
                           f"{done.stderr[-500:]}")
    return {"s": seconds, "rss": int(peak_file.read_text()) * 1024, **json.loads(done.stdout)}


def run(shots: int = 10_000, pdf_shots: int = PDF_SHOTS, small: int = SMALL) -> dict[str, Any]:
    from storyboard_cli.store import Store

    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp_dir:
        tmp = Path(tmp_dir)
        s3 = harness.start_s3(tmp / "s3")
        try:
            store = Store(tmp / "storyboard.db")
            with harness.stopwatch() as t_setup:
                made = build(store, s3, shots, {"pdf": pdf_shots, "small": small})
            store.close()
            ids = made["ids"]
            config = tmp / "storyboard.toml"
            config.write_text('[store]\npath = "storyboard.db"\n\n[s3]\n'
                              f'addressing_style = "path"\nbucket = "{s3.bucket}"\n')
            env = {**os.environ, **s3.env(), "STORYBOARD_CONFIG": str(config), "NO_COLOR": "1"}
            out = tmp / "out"
            out.mkdir()
            # (format, project, shots); the html of the small project is the baseline that
            # shows what 10,000 shots add.
            jobs = [("html", "small", small), ("html", "all", shots), ("zip", "all", shots),
                    ("pdf", "pdf", pdf_shots), ("mp4", "small", small),
                    ("storyboarder", "small", small)]
            results = []
            for fmt, project, n in jobs:
                args = ["export", str(ids[project]), "--format", fmt, "-o", str(out)]
                result = {"shots": n, **measure(args, env, tmp)}
                assert result["frames"] == n, result
                results.append(result)
                for path in map(Path, result["files"]):  # free the disk for the next
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        finally:
            s3.proc.stop()
    return {"shots": shots, "pdf_shots": pdf_shots, "small": small, "setup_s": t_setup[0],
            "png_bytes": made["png_bytes"], "exports": results}


def markdown(r: dict[str, Any]) -> tuple[str, list[bool]]:
    rows = []
    for e in r["exports"]:
        rows.append([f"`export --format {e['format']}`", f"{e['shots']:,}", f"{e['s']:.1f} s",
                     f"{e['s'] / e['shots'] * 1000:.1f} ms", f"{e['rss'] / 2**20:.0f} MiB",
                     f"{e['bytes'] / 2**20:.1f} MiB"])
    mib = r["png_bytes"] / 2**20
    text = (f"`storyboard export` (a CLI process) of a project whose {r['shots']:,} shots are "
            f"all rendered: {FRAME[0]} × {FRAME[1]} sketch frames, {mib:.0f} MiB of PNG in "
            f"SeaweedFS (setup, not measured: {r['setup_s']:.0f} s); pdf of its first "
            f"{r['pdf_shots']:,} shots, mp4 and storyboarder of its first {r['small']:,}. Peak "
            "memory is the export process's resident high-water mark (VmHWM; `python -c pass` "
            "is about 10 MiB):\n\n"
            + harness.table(["export", "shots", "time", "per shot", "peak memory", "output"],
                            rows)
            + "\n\nThe frames stream (at most 16 read ahead of the writer): what html and zip "
            f"add to the small project's peak is the {r['shots']:,} shot objects (and the zip's "
            "shot list, written last), not their images. The PDF library (fpdf2) keeps a "
            "document's JPEGs, and then the whole file, in memory until it writes it: the pdf "
            "is made 50 pages at a time and each part joined to the file when done. mp4 and "
            "storyboarder hold one frame at a time; their time per shot is the figure that "
            "scales.\n")
    pdf = next(e for e in r["exports"] if e["format"] == "pdf")
    if pdf["shots"] < TARGET_PDF_SHOTS:
        # The peak grows with the shots: a smaller PDF says nothing of the target.
        return text + (f"- pdf of {TARGET_PDF_SHOTS:,} shots, peak memory (MiB): not measured "
                       f"(this run: {pdf['shots']:,} shots; `bench/export.py --pdf-shots "
                       f"{TARGET_PDF_SHOTS}`)\n"), []
    line, ok = harness.verdict(f"pdf of {pdf['shots']:,} shots, peak memory (MiB)",
                               pdf["rss"] / 2**20, TARGET_PDF_MIB, False, "{:.0f}")
    return text + f"- {line}\n", [ok]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shots", type=int, default=10_000)
    parser.add_argument("--pdf-shots", type=int, default=PDF_SHOTS)
    parser.add_argument("--small", type=int, default=SMALL)
    args = parser.parse_args()
    print(markdown(run(args.shots, args.pdf_shots, args.small))[0])


if __name__ == "__main__":
    main()
