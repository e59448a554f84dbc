"""The meeting page's offer edit that asks for Opus DTX (web/static/sdp.js), run under Node with its
own tests (tests/js/sdp.test.mjs, on the offer Chromium makes for the page's microphone)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

JS_TEST = Path(__file__).parents[1] / "js" / "sdp.test.mjs"


def test_the_pages_offer_edit_passes_its_own_tests_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: the meeting page's offer edit (sdp.js) cannot be tested")
    result = subprocess.run(
        [node, "--test", str(JS_TEST)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout and "# pass 7" in result.stdout, result.stdout[-2000:]
