"""The dashboard's pure JS modules (store, socket policy, url, format), tested with `node --test`."""

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TESTS = Path(__file__).resolve().parent / "js"


def test_js_modules() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JS unit tests in tests/js need Node.js 18 or newer on PATH")
    files = sorted(str(path) for path in JS_TESTS.glob("*.test.mjs"))
    assert files, f"no *.test.mjs files in {JS_TESTS}"
    # Files rather than the directory: node before 21 and after treat a directory argument differently.
    result = subprocess.run([node, "--test", *files], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout}\n{result.stderr}"
