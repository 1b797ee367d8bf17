"""The import-layer check: reads every module's imports with `ast`, no import is executed.

Layers, lowest first (DESIGN.md section 1). A module may import its own layer and lower ones;
`hal` is outside the ladder and imports nothing from `edged` (every layer may import `hal`).
Lazy imports inside functions and `TYPE_CHECKING` blocks count like any other import.

    python -m tests.support.layers [ROOT]    # prints one line per violation, exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("plumbing", ("edged", "edged.runtime", "edged.contract", "edged.config", "edged.control")),
    ("store", ("edged.store",)),
    ("link", ("edged.link",)),
    ("services", ("edged.services",)),
    ("cloudsim", ("edged.cloudsim",)),
    ("operator", ("edged.fleetctl",)),
    ("app", ("edged.app",)),
    ("cli", ("edged.cli", "edged.__main__")),
)
"""The simulated cloud and the operator's tool (`edged fleet`) sit above the services (no
service may import them) and below the composition root, which may start them."""


@dataclass(frozen=True)
class Violation:
    path: Path
    line: int
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.why}"


def layer_of(module: str) -> tuple[int, str] | None:
    """The layer index and name of an `edged` module; None outside `edged` (hal, libraries)."""
    best: tuple[int, str, int] | None = None
    for index, (name, packages) in enumerate(LAYERS):
        for package in packages:
            inside = module == package or module.startswith(package + ".")
            if inside and (best is None or len(package) > best[2]):
                best = (index, name, len(package))
    return None if best is None else (best[0], best[1])


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return found


def check_file(root: Path, path: Path) -> list[Violation]:
    module = module_name(root, path)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    own = layer_of(module)
    violations = []
    for line, target in imported_modules(tree, module, path.name == "__init__.py"):
        rel = path.relative_to(root)
        if module == "hal" or module.startswith("hal."):
            if target == "edged" or target.startswith("edged."):
                violations.append(
                    Violation(rel, line, module, target, "hal imports nothing from edged")
                )
            continue
        theirs = layer_of(target)
        if own is None or theirs is None or theirs[0] <= own[0]:
            continue
        why = f"{own[1]} may not import {theirs[1]} (a higher layer)"
        violations.append(Violation(rel, line, module, target, why))
    return violations


def check_tree(root: Path) -> list[Violation]:
    violations: list[Violation] = []
    for top in ("edged", "hal"):
        for path in sorted((root / top).rglob("*.py")):
            violations.extend(check_file(root, path))
    return violations


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[2]
    violations = check_tree(root)
    for violation in violations:
        print(violation)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
