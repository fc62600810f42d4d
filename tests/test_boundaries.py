"""The package boundaries: the GPU box runs without the host package, and the two sides share
only storyboard_contract.

Each check imports every module of a package in a fresh interpreter in which the other side's
packages cannot be imported, as on a machine where they are not installed: an import added
anywhere, at module level or in a package's __init__, fails the check. (A library's optional
import, such as httpx's `try: import rich` for its own command line, just finds it missing.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

IMPORT_ALL_WITHOUT = """
import importlib, json, pkgutil, sys

class NotInstalled:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, NotInstalled)
package = importlib.import_module({package!r})
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
"""


def import_everything(package: str, without: set[str]) -> set[str]:
    """The top-level modules loaded by importing every module of `package`, with the packages
    `without` made impossible to import."""
    code = IMPORT_ALL_WITHOUT.format(package=package, blocked=sorted(without))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_gpu_daemon_runs_without_the_host_package_or_its_libraries():
    # testing.py (random-weight pipelines for tests and benchmarks) is imported too.
    loaded = import_everything("gpu_daemon", {"storyboard_cli", "rq", "sqlite_utils", "rich"})
    assert {"gpu_daemon", "storyboard_contract", "fastapi"} <= loaded


def test_the_contract_imports_neither_side_nor_anything_heavy():
    loaded = import_everything("storyboard_contract", {"storyboard_cli", "gpu_daemon"})
    # boto3 and Pillow stay inside the functions that need them: the CLI reads the contract
    # at start-up. (guards.py imports starlette: only the two HTTP servers import it.)
    assert not loaded & {"boto3", "botocore", "PIL", "torch", "fastapi"}


def test_the_host_imports_nothing_of_the_gpu_daemon():
    import_everything("storyboard_cli", {"gpu_daemon", "torch", "diffusers"})


def test_no_source_file_names_the_other_side_in_an_import():
    """Imports inside functions cross the boundary as surely as those at the top."""
    for path in (ROOT / "gpu_daemon").rglob("*.py"):
        assert "storyboard_cli" not in path.read_text(encoding="utf-8"), path
    for path in (ROOT / "storyboard_cli").rglob("*.py"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip().startswith(("import ", "from ")):
                assert "gpu_daemon" not in line, (path, line)


def test_the_task_modules_import_each_other_one_way():
    """No cycle among storyboard_cli/tasks (the worker uses the jobs, never the reverse),
    counting imports inside functions too."""
    import ast
    from graphlib import CycleError, TopologicalSorter

    package = "storyboard_cli.tasks"
    folder = ROOT / "storyboard_cli" / "tasks"
    modules = {p.stem for p in folder.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        tree = ast.parse((folder / f"{name}.py").read_text(encoding="utf-8"))
        graph[name] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == package:
                graph[name] |= {a.name for a in node.names} & modules
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package):
                graph[name].add(node.module.removeprefix(package + "."))
    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle in {package}: {exc.args[1]}") from None
    assert "jobs" in graph["worker"]
