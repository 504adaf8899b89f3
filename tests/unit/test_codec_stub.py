"""`_codec.pyi` describes the built extension exactly (mypy's stubtest compares the two)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

try:
    from qrun import _codec  # noqa: F401
except ImportError:  # pragma: no cover - depends on the build
    if os.environ.get("QRUN_REQUIRE_NATIVE") == "1":
        raise
    pytest.skip("the Rust extension qrun._codec is not built", allow_module_level=True)


def test_the_stub_matches_the_extension() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "qrun._codec"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
