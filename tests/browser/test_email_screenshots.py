"""A real headless Chromium renders the email at phone and desktop widths (`python -m scripts.screenshot_email`)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import service_missing

ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.browser


def test_screenshot_script_photographs_the_email_at_phone_and_desktop_widths(tmp_path):
    if not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
        service_missing("needs Debian's chromium: run scripts/install_browser.sh")
    env = dict(os.environ)  # no PYTHONPATH: run as a module from the root, the packages import
    env.pop("DATABASE_URL", None)  # the script uses its own throw-away SQLite database
    result = subprocess.run(
        [sys.executable, "-m", "scripts.screenshot_email", "--out", str(tmp_path), "--language", "es"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name, width in (("email-phone.png", 390), ("email-desktop.png", 1200), ("email-phone-dark.png", 390)):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE), name
        assert int.from_bytes(data[16:20], "big") == width, name  # IHDR width
        assert 5_000 < len(data) < 300 * 1024, (name, len(data))
