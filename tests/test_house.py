"""The house rules of issue 21, checked on the source tree: names that do not repeat, modules
small enough to have one job, no private names across packages, no research code in the
package, and a README whose configuration block is the default configuration."""

from __future__ import annotations

import ast
import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "miscreen"
MAX_LINES = 450


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _package_of(path: Path) -> str:
    """The first-level package a module belongs to (``miscreen.fetch``), or the module itself
    for top-level modules (``miscreen.config``)."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:2])


def test_no_two_modules_outside_cli_share_a_name() -> None:
    names = Counter(p.name for p in _modules() if p.name != "__init__.py" and "cli" not in p.parts)
    assert {n: c for n, c in names.items() if c > 1} == {}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_is_over_the_line_limit(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines"


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) for every ``from miscreen... import name`` in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def test_no_private_name_is_imported_from_another_package() -> None:
    offenders = []
    for path in _modules():
        own = _package_of(path)
        for module, name in _imports(path):
            if not module.startswith("miscreen"):
                continue
            other = ".".join(module.split(".")[:2])
            private = name.startswith("_") or any(
                part.startswith("_") and part != "__init__" for part in module.split(".")
            )
            if private and other != own:
                offenders.append(f"{path.relative_to(REPO)}: from {module} import {name}")
    assert offenders == []


def test_shipped_code_imports_nothing_from_benchmarks() -> None:
    offenders = [
        f"{p.relative_to(REPO)}: {m}"
        for p in _modules()
        for m, _ in _imports(p)
        if m == "benchmarks" or m.startswith("benchmarks.")
    ]
    assert offenders == []


def test_no_module_aliases_of_one_letter() -> None:
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    module = alias.name if isinstance(node, ast.Import) else node.module or ""
                    if (
                        alias.asname
                        and len(alias.asname) == 1
                        and module.startswith("miscreen")
                        and alias.name[:1].islower()  # a module, not a class
                        and alias.name != "schema"  # `schema as S`: the column names
                    ):
                        offenders.append(
                            f"{path.relative_to(REPO)}: {alias.name} as {alias.asname}"
                        )
    assert offenders == []


def test_research_featurizers_are_not_in_the_package() -> None:
    assert not list(PACKAGE.rglob("embeddings.py"))
    assert not list(PACKAGE.rglob("anion_framework.py"))
    assert not list(PACKAGE.rglob("simulate.py"))


def test_readme_configuration_block_is_the_default_config() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    marker = "<!-- configs/default.yaml -->"
    assert marker in readme, "the README marks its copy of configs/default.yaml"
    block = re.search(re.escape(marker) + r"\s*```yaml\n(.*?)```", readme, flags=re.S)
    assert block is not None
    assert block.group(1) == (REPO / "configs" / "default.yaml").read_text(encoding="utf-8")


def test_every_make_target_is_in_the_readme() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = re.findall(r"^([a-z][a-z-]*):.*## ", makefile, flags=re.M)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert targets and [t for t in targets if f"`make {t}" not in readme] == []
