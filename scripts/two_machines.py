#!/usr/bin/env python3
"""Follow the two-machine guide literally, on network namespaces: a host and one or two GPU boxes.

    sudo .venv/bin/python scripts/two_machines.py [--boxes 2] [--fast] [--keep]
    sudo .venv/bin/python scripts/two_machines.py --down   # what a --keep run left up

Each machine is a network namespace of its own (its own loopback, so the guide's fixed ports
are free there), joined by a bridge: the host at 198.18.0.1, GPU box i at 198.18.0.(i+1), and
`host.example.com` resolving to the host on every machine (/etc/netns/<ns>/hosts). Each
machine has its own folder as its file system root for the guide's paths and its own HOME.

What runs is read from the guides themselves: the ```sh and ```toml blocks of frp/README.md's
"Two machines, step by step" (host steps 1-4 with storage option B, GPU box step 5a, host step
6) and, with --boxes 2, of queue/README.md's "Several GPU boxes". A ```sh block runs as one
`sh -e` script in the machine's checkout; a ```toml block is applied to its storyboard.toml as
the guide says ("set these keys"). The only changes to the guide's text, all printed:

- `sudo ` is dropped (this runs as root) and the guide's absolute paths (/srv/storyboard,
  /var/lib/storyboard) are moved under the machine's folder; `~` is the machine's HOME;
- `<this repository>` is this checkout (git clone of its HEAD: commit first);
- `scp host.example.com:PATH ... .` copies the files from the host machine's folder (no sshd);
- the torch line's CUDA index is not reachable here: it installs torch==2.13.0 from this
  machine's CPU wheel instead (same version);
- blocks that call `systemctl` are skipped (no systemd in a namespace; the non-systemd
  commands beside them are run); apt-get lines are skipped when the packages are installed;
- for the second box, queue/README.md says to render with `--box gpu2`: the 5a block's
  render line gets it;
- installing (git clone, python3 -m venv, pip, `storyboard frp install`) runs outside the
  namespaces, which cannot reach the package registries. With --fast, the machines use this
  checkout's .venv instead of creating their own (what `make test` runs).

Then it checks what the guide promises: `doctor` passes on every machine (and leaves no
storyboard.db on a GPU box), `generate` finishes, its links download from the host and from a
GPU box, a render of the task is logged on each GPU box, and `ps` shows which daemon each worker
uses. Every process started in the namespaces is stopped by pid, and the namespaces, their
/etc/netns folders and the machines' folders are removed, also on failure. With --keep the
machines stay up as the walk left them (their namespaces, processes and folders), to look
around in (`ip netns exec NS bash`); `--down` then removes them.
Exit code 0 when the guide worked, 1 when a step failed, 77 when network namespaces are not
available here (not root, or `ip netns add` refused).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBNET = "198.18.0"
SKIP = 77
ROOT_PATHS = ("/srv/storyboard", "/var/lib/storyboard")
INSTALL = re.compile(r"(^|\s)(git clone|python3 -m venv|\S*pip install|\S*storyboard frp install)")


class StepFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"[two-machines] {message}", flush=True)


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, text=True, capture_output=True, **kwargs)


# --- the guide ------------------------------------------------------------------------------


@dataclass
class Block:
    heading: str
    lang: str
    text: str


def blocks(markdown: Path, section: str) -> list[Block]:
    """The fenced blocks of one `## section` (up to the next `## `), with their `###` heading."""
    text = markdown.read_text(encoding="utf-8")
    start = text.index(f"## {section}")
    end = text.find("\n## ", start + 3)
    body = text[start:end if end != -1 else len(text)]
    found, heading = [], section
    lines = body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("### "):
            heading = line[4:]
        if line.startswith("```") and len(line) > 3:
            lang, content = line[3:].strip(), []
            i += 1
            while not lines[i].startswith("```"):
                content.append(lines[i])
                i += 1
            found.append(Block(heading, lang, "\n".join(content) + "\n"))
        i += 1
    return found


def select(found: list[Block], heading_part: str, lang: str | None = None) -> list[Block]:
    return [b for b in found if heading_part in b.heading and (lang is None or b.lang == lang)]


def apply_toml(path: Path, snippet: str) -> None:
    """Set the snippet's keys in a TOML file section by section, as a person edits it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    section = None
    for raw in snippet.splitlines():
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        if line.startswith("["):
            section = line.strip()
            if section not in lines:
                lines += ["", section]
            continue
        key = line.split("=", 1)[0].strip()
        start = lines.index(section) + 1
        end = next((j for j in range(start, len(lines)) if lines[j].startswith("[")), len(lines))
        for j in range(start, end):
            if re.match(rf"{re.escape(key)}\s*=", lines[j]):
                lines[j] = line
                break
        else:
            lines.insert(end, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- machines -------------------------------------------------------------------------------


@dataclass
class Machine:
    name: str  # host, gpu1, gpu2
    ns: str
    address: str
    root: Path  # what the guide's absolute paths live under
    fast_venv: Path | None
    changes: list[str] = field(default_factory=list)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def checkout(self) -> Path:
        return self.root / "srv" / "storyboard" if self.name == "host" else \
            self.home / "storyboard"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items()
                if k.startswith(("PIP_", "LANG", "LC_")) or k in ("TERM", "TZ")}
        return {**keep, "HOME": str(self.home), "USER": "root",
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

    def translate(self, script: str, host: Machine, box_name: str) -> str:
        out = []
        for line in script.splitlines():
            new = line.replace("sudo ", "")
            for path in ROOT_PATHS:
                owner = host if path == "/srv/storyboard" else self
                new = new.replace(path, str(owner.root) + path)
            new = new.replace("<this repository>", str(REPO))
            new = re.sub(r"--index-url https://download\.pytorch\.org/whl/\S+", "", new)
            scp = re.match(r"\s*scp (.+) \.$", new)
            if scp:
                files = [f.split(":", 1)[1] for f in scp.group(1).split()]
                new = "cp " + " ".join(files) + " ."
            if box_name and re.search(r"frp render --side gpu(\s|$)", new) and "--box" not in new:
                new = new.replace("--side gpu", f"--side gpu --box {box_name}")
            if new != line:
                self.changes.append(f"{self.name}: {line.strip()}  ->  {new.strip()}")
            out.append(new)
        return "\n".join(out) + "\n"

    def sh(self, script: str, netns: bool = True, timeout: float = 600,
           cwd: Path | None = None) -> str:
        cwd = cwd or (self.checkout if self.checkout.is_dir() else self.home)
        argv = ["sh", "-e", "-c", script]
        if netns:
            argv = ["ip", "netns", "exec", self.ns, *argv]
        done = run(argv, cwd=cwd, env=self.env(), timeout=timeout, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise StepFailed(f"{self.name}: exit {done.returncode} from\n{script}\n--- stdout\n"
                             f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
        return done.stdout

    def follow(self, block: Block, host: Machine, box_name: str = "") -> None:
        """Run one ```sh block of the guide: install lines outside the namespace (they need
        the registries), the rest inside, in order."""
        script = self.translate(block.text, host, box_name)
        log(f"{self.name}: {block.heading}")
        chunk: list[str] = []
        inside: bool | None = None

        def flush() -> None:
            if chunk:
                self.sh("\n".join(chunk) + "\n", netns=bool(inside))
                chunk.clear()

        for line in _logical_lines(script):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            if re.match(r"apt-get install", stripped):
                packages = [p for p in stripped.split()[2:] if not p.startswith("-")]
                if all(_installed(p) for p in packages):
                    self.changes.append(f"{self.name}: skipped (installed): {stripped}")
                    continue
            is_install = bool(INSTALL.search(stripped))
            if is_install and self.fast_venv is not None and (
                    "python3 -m venv" in stripped or "pip install" in stripped):
                flush()
                venv = self.checkout / ".venv"
                if not venv.exists():
                    venv.symlink_to(self.fast_venv)
                self.changes.append(f"{self.name}: --fast, this checkout's .venv instead of: "
                                    f"{stripped}")
                continue
            if inside is not None and inside == is_install:
                flush()
            inside = not is_install
            chunk.append(line)
        flush()


def _installed(package: str) -> bool:
    """Whether what a Debian package brings is here (python3-venv: a working `-m venv`)."""
    if package == "python3-venv":
        return run(["python3", "-m", "venv", "--help"]).returncode == 0
    return shutil.which(package) is not None


def _logical_lines(script: str) -> list[str]:
    """Lines with backslash continuations and for/do/done loops kept together."""
    out: list[str] = []
    buf = ""
    depth = 0
    for line in script.splitlines():
        buf = f"{buf}\n{line}" if buf else line
        stripped = line.split("#", 1)[0].strip()
        if re.match(r"(for|while|if)\b", stripped):
            depth += 1
        if re.search(r"(^|;|\s)(done|fi)\s*$", stripped):
            depth -= 1
        if line.endswith("\\") or depth > 0:
            continue
        out.append(buf)
        buf = ""
    if buf:
        out.append(buf)
    return out


NAMESPACE = re.compile(r"^sb[0-9a-f]{4}(h|g[12])$")
FOLDER_PREFIX = "sb-two-machines-"
# In a run's folder, the namespaces it made, one a line: --down removes those and no other.
MADE_HERE = "namespaces"


class Network:
    """Namespaces joined by a bridge in the host's namespace; removed by close()."""

    @classmethod
    def left_up(cls, folders: list[Path]) -> Network:
        """The namespaces earlier runs left up (--keep) in these run folders, to close: those
        they recorded that are still there, not any namespace named like ours."""
        net = cls(0, None)
        listed = {line.split()[0] for line in run(["ip", "netns", "list"]).stdout.split("\n")
                  if line.strip()}
        recorded = [ns for folder in folders if (folder / MADE_HERE).is_file()
                    for ns in (folder / MADE_HERE).read_text().split()]
        net.created = [ns for ns in recorded if ns in listed and NAMESPACE.match(ns)]
        return net

    def __init__(self, count: int, record: Path | None) -> None:
        self.tag = secrets.token_hex(2)
        self.names = [f"sb{self.tag}h"] + [f"sb{self.tag}g{i}" for i in range(1, count + 1)]
        self.created: list[str] = []
        self.record = record

    def ip(self, *args: str, ns: str | None = None) -> None:
        argv = ["ip", *(["-n", ns] if ns else []), *args]
        done = run(argv)
        if done.returncode != 0:
            raise StepFailed(f"{' '.join(argv)}: {done.stderr.strip()}")

    def open(self) -> list[tuple[str, str]]:
        host = self.names[0]
        for ns in self.names:
            self.ip("netns", "add", ns)
            self.created.append(ns)
            if self.record is not None:
                with self.record.open("a") as made:
                    made.write(ns + "\n")
            self.ip("link", "set", "lo", "up", ns=ns)
            etc = Path("/etc/netns") / ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n::1 localhost\n"
                                       f"{SUBNET}.1 host.example.com\n")
        self.ip("link", "add", "br0", "type", "bridge", ns=host)
        self.ip("addr", "add", f"{SUBNET}.1/24", "dev", "br0", ns=host)
        self.ip("link", "set", "br0", "up", ns=host)
        addresses = [(host, f"{SUBNET}.1")]
        for i, ns in enumerate(self.names[1:], start=1):
            here, there = f"{ns}a", f"{ns}b"
            self.ip("link", "add", here, "type", "veth", "peer", "name", there)
            self.ip("link", "set", here, "netns", host)
            self.ip("link", "set", there, "netns", ns)
            self.ip("link", "set", here, "master", "br0", "up", ns=host)
            self.ip("addr", "add", f"{SUBNET}.{i + 1}/24", "dev", there, ns=ns)
            self.ip("link", "set", there, "up", ns=ns)
            addresses.append((ns, f"{SUBNET}.{i + 1}"))
        return addresses

    def stop_processes(self) -> int:
        """SIGTERM, then SIGKILL, every process inside our namespaces, by pid."""
        stopped = 0
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = [int(p) for ns in self.created
                    for p in run(["ip", "netns", "pids", ns]).stdout.split()]
            for pid in pids:
                with suppress(ProcessLookupError):
                    os.kill(pid, sig)
                    stopped += sig == signal.SIGTERM
            if not pids:
                break
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(
                    run(["ip", "netns", "pids", ns]).stdout.strip() for ns in self.created):
                time.sleep(0.2)
        return stopped

    def close(self) -> None:
        self.stop_processes()
        for ns in self.created:
            run(["ip", "netns", "delete", ns])
            shutil.rmtree(Path("/etc/netns") / ns, ignore_errors=True)


def netns_available() -> str:
    """'' when network namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"sbprobe{secrets.token_hex(2)}"
    done = run(["ip", "netns", "add", probe])
    if done.returncode != 0:
        return f"ip netns add refused: {done.stderr.strip()}"
    run(["ip", "netns", "delete", probe])
    return ""


# --- the walk-through -----------------------------------------------------------------------


def walk(machines: list[Machine], boxes: int) -> dict[str, object]:
    host, gpus = machines[0], machines[1:]
    guide = blocks(REPO / "frp" / "README.md", "Two machines, step by step")
    for m in machines:
        m.home.mkdir(parents=True, exist_ok=True)
    (host.root / "srv").mkdir(parents=True, exist_ok=True)

    def host_steps(heading: str) -> None:
        for block in select(guide, heading):
            if "Option A" in block.text or block.lang not in ("sh", "toml"):
                continue
            if block.lang == "toml":
                if "tos-s3" in block.text:  # the cloud bucket of option A
                    continue
                log(f"host: {heading}: storyboard.toml keys")
                apply_toml(host.checkout / "storyboard.toml", block.text)
            elif "systemctl" in block.text:
                host.changes.append(f"host: skipped (systemd): {block.text.splitlines()[0]}")
            else:
                host.follow(block, host)

    host_steps("1. On the host")
    host_steps("2. On the host")
    host_steps("3. On the host")
    host_steps("4. On the host")
    gpu_block = select(guide, "5a.", "sh")[0]
    gpus[0].follow(gpu_block, host)
    for block in select(guide, "6. Check", "sh"):
        host.follow(block, host)
    result: dict[str, object] = {"first_task": _last_task(host)}

    if boxes == 2:
        more = blocks(REPO / "queue" / "README.md", "Several GPU boxes")
        apply_toml(host.checkout / "storyboard.toml", select(more, "Several", "toml")[0].text)
        log("host: storyboard.toml keys: [frp] boxes")
        host_part = [b for b in more if b.lang == "sh" and "--side host" in b.text]
        host.follow(host_part[0], host)
        gpus[1].follow(gpu_block, host, box_name="gpu2")
        host.sh(".venv/bin/storyboard doctor --wait 60\n"
                ".venv/bin/storyboard generate 1\n")
        result["second_task"] = _last_task(host)

    # What the guide promises, checked from each machine.
    assert "yes" in host.sh("redis-cli config get appendonly\n"), "Redis without its AOF"
    assert "running" in gpus[0].sh("frp/start_frpc.sh status\n"), "frpc status: no proxy"
    for gpu in gpus:
        assert not list(gpu.checkout.glob("storyboard.db*")), f"{gpu.name} has a storyboard.db"
        gpu.sh(".venv/bin/storyboard doctor --side gpu --json > /dev/null\n")
    checks = json.loads(host.sh(".venv/bin/storyboard doctor --json\n"))["checks"]
    result["doctor"] = {c["name"]: c["status"] for c in checks}
    task = str(result.get("second_task") or result["first_task"])
    shown = json.loads(host.sh(f".venv/bin/storyboard status {task} --json\n"))
    assert shown["status"] == "succeeded", shown
    link = shown["shots"][0]["image_url"]
    fetch = f"import urllib.request; assert urllib.request.urlopen({link!r}).read(8)"
    for m in (host, gpus[0]):  # whoever opens the links: from the host and from elsewhere
        m.sh(f"python3 -c {shlex.quote(fetch)}\n")
    result["link_host"] = link.split("?")[0]
    renders = {}
    for gpu in gpus:
        daemon_log = (gpu.checkout / "logs" / "daemon.log").read_text()
        renders[gpu.name] = daemon_log.count(f"render task={task}")
        assert "GET /healthz" not in daemon_log, f"{gpu.name}: health checks in the access log"
    assert all(renders.values()), f"a GPU box rendered nothing of {task}: {renders}"
    result["renders_per_box"] = renders
    ps = json.loads(host.sh(".venv/bin/storyboard ps --json || true\n"))
    result["workers"] = sorted(f"{w['box'] or '-'} {w['daemon_url']}" for w in ps["workers"])
    return result


def _last_task(host: Machine) -> str:
    return json.loads(host.sh(".venv/bin/storyboard show 1 --json\n"))["task"]["id"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--boxes", type=int, choices=(1, 2), default=2,
                        help="GPU boxes beside the host (default: 2)")
    parser.add_argument("--fast", action="store_true",
                        help="use this checkout's .venv on every machine (no installs)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the machines up (namespaces, processes, folders); --down "
                             "removes them")
    parser.add_argument("--down", action="store_true",
                        help="remove what earlier --keep runs left up, and nothing else")
    args = parser.parse_args()
    # SIGTERM (a test's timeout, Ctrl+C's cousin) still cleans up: processes, namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    why = netns_available()
    if why:
        print(f"two-machines: skipped: {why}", file=sys.stderr)
        return SKIP
    if args.down:
        return down()
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))
    net = Network(args.boxes, root / MADE_HERE)
    ok = False
    machines: list[Machine] = []
    try:
        fast = Path(sys.prefix) if args.fast else None
        for (ns, address), name in zip(net.open(), ["host", "gpu1", "gpu2"], strict=False):
            machines.append(Machine(name, ns, address, root / name, fast))
        result = walk(machines, args.boxes)
        ok = True
        for m in machines:
            for change in m.changes:
                log(f"changed: {change}")
        log(f"result: {json.dumps(result, indent=1)}")
        log(f"the guide worked on {len(machines)} machines in {time.monotonic() - started:.0f} s")
    except (StepFailed, AssertionError, subprocess.TimeoutExpired, KeyError, ValueError) as exc:
        print(f"two-machines: FAILED: {exc}", file=sys.stderr)
        for m in machines:
            for path in sorted((m.checkout / "logs").glob("*.log")) if m.checkout.is_dir() else []:
                tail = "\n".join(path.read_text(errors="replace").splitlines()[-15:])
                print(f"--- {m.name} {path.name}\n{tail}", file=sys.stderr)
    finally:
        if args.keep:
            log(f"kept the machines up: namespaces {' '.join(net.created)} (ip netns exec NS "
                f"bash), folders in {root}; `{Path(sys.argv[0]).name} --down` removes them")
        else:
            net.close()
            shutil.rmtree(root, ignore_errors=True)
    return 0 if ok else 1


def down() -> int:
    """Stop and remove what --keep runs left: our namespaces and their processes, and the
    machines' folders."""
    folders = sorted(Path(tempfile.gettempdir()).glob(FOLDER_PREFIX + "*"))
    net = Network.left_up(folders)
    stopped = net.stop_processes()
    net.close()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    log(f"removed {len(net.created)} namespace(s), {stopped} process(es), "
        f"{len(folders)} folder(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
