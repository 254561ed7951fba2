"""Imports point one way (docs/architecture.md): every module imports, and the module graph has no cycles.

The graph counts every ``import`` statement of the project's packages, including imports inside functions
(a lazy import is still a dependency, and still a cycle if it closes one).
"""
import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("droid_data", "envs", "vjepa_ac", "planning")
TRAINERS = {"vjepa_ac.ac_train", "vjepa_ac.pretrain"}
# Modules that orchestrate training stages, and so may import the trainers.
ORCHESTRATORS = TRAINERS | {"vjepa_ac.demo", "vjepa_ac.cli.pretrain", "vjepa_ac.cli.train_ac", "vjepa_ac.cli.demo"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules imported anywhere in the file (absolute and relative imports)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from pkg import name` -> the module pkg.name or pkg
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name, path, set(_modules())) for name, path in _modules().items()}
# The one deliberate back-edge: vjepa_ac.checkpoint.load_encoder (the documented entry point for encoders) is a
# facade over vjepa_ac.formats, which itself reads files with vjepa_ac.checkpoint's loaders; the facade imports
# formats inside the function. Nothing else may close a cycle.
FACADES = {("vjepa_ac.checkpoint", "vjepa_ac.formats")}


@pytest.mark.parametrize("module", sorted(_modules()))
def test_every_module_imports(module):
    if module == "envs.franky_backend":
        pytest.importorskip("franky")
    importlib.import_module(module)


def test_data_and_simulator_never_import_models_or_planning():
    bad = {(m, d) for m, deps in GRAPH.items() if m.split(".")[0] in ("droid_data", "envs")
           for d in deps if d.split(".")[0] in ("vjepa_ac", "planning")}
    assert not bad, f"data/simulator modules import models or planning: {sorted(bad)}"


def test_only_orchestrators_import_a_trainer():
    """Inference (runtime, feature store, state head, probe, planning) never needs the training code."""
    bad = {(m, d) for m, deps in GRAPH.items() for d in deps if d in TRAINERS and m not in ORCHESTRATORS}
    assert not bad, f"modules importing a trainer: {sorted(bad)}"
    assert not any(d.startswith("vjepa_ac") for m, deps in GRAPH.items() if m.startswith("planning") for d in deps)


def test_no_import_cycles():
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for dep in sorted(GRAPH.get(node, ())):
            if dep.startswith(node + ".") or (node, dep) in FACADES:  # __init__ re-exports; the facade above
                continue
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
