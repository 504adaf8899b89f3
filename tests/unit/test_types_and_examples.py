"""Every function of the package is typed and type-checks; every example at least compiles
(Flask and Django are not dependencies, so those examples are not imported)."""

from __future__ import annotations

import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_package_type_checks_with_every_function_annotated() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", "/dev/null"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "examples").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_example_compiles(path: Path, tmp_path: Path) -> None:
    py_compile.compile(str(path), doraise=True, cfile=str(tmp_path / "compiled.pyc"))
