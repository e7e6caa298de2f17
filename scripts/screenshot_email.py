"""Screenshot a rendered nurture email in headless Chromium at phone and desktop widths.

    python -m scripts.screenshot_email [--out docs/img] [--language en] [--stage recently_diagnosed]

Renders one step of a default series (content/library, loaded into a throw-away SQLite
database) for a sample subscriber, writes the HTML to a temporary file and photographs it with
Debian's Chromium (scripts/install_browser.sh installs it). Only file:// is opened: no network.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MAX_BYTES = 300 * 1024
# (file name, width, height, extra Chromium flags)
SHOTS = [
    ("email-phone.png", 390, 1400, []),
    ("email-desktop.png", 1200, 1330, []),
    ("email-phone-dark.png", 390, 1400, ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]),
]


def render_sample_html(*, language: str, stage: str, position: int) -> str:
    from nurture.emails.layout import render_step_full
    from nurture.emails.links import Personal, SAMPLE_TOKEN, greeting_for
    from nurture.models import Step
    from nurture.selectors.series import step_published_articles
    from support.library import load_default_library

    load_default_library()
    step = Step.objects.select_related("series").get(series__language=language, series__stage=stage, position=position)
    sample = "https://guide.example.org/preferences/" + SAMPLE_TOKEN + "/"
    personal = Personal(
        greeting=greeting_for("Alex", language=language),
        preferences_url=sample,
        unsubscribe_url=sample.replace("/preferences/", "/unsubscribe/"),
        view_online_url=sample.replace("/preferences/", "/email/"),
    )
    html, _text = render_step_full(
        step=step, articles=step_published_articles(step_id=step.pk), language=language, personal=personal
    )
    return html


def screenshot(html_path: Path, out: Path, width: int, height: int, extra: list[str], profile: Path) -> None:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        "--force-device-scale-factor=1", f"--user-data-dir={profile}", f"--screenshot={out}",
        f"--window-size={width},{height}", *extra, html_path.as_uri(),
    ]
    subprocess.run(command, check=True, timeout=90, capture_output=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "img"))
    parser.add_argument("--language", default="en", choices=["en", "es"])
    parser.add_argument("--stage", default="recently_diagnosed")
    # A one-article step, so the whole email (footer included) fits in the pictures.
    parser.add_argument("--position", type=int, default=7, help="step position in the series (default 7)")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print("Chromium is missing: run scripts/install_browser.sh", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        # Realistic organisation details for the picture, instead of the "[not set]" placeholders.
        os.environ.update(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path / 'shot.sqlite3'}",
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "NURTURE_ORG_ADDRESS": "1 Example Street, Springfield, AB1 2CD",
                "NURTURE_ORG_HELPLINE": "0800 000 000 (Mon-Fri, 9am-5pm)",
                "NURTURE_ORG_WEBSITE": "https://guide.example.org",
                "SITE_URL": "https://guide.example.org",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        html_path = tmp_path / "email.html"
        html_path.write_text(render_sample_html(language=args.language, stage=args.stage, position=args.position),
                             encoding="utf-8")
        out_dir = Path(args.out)
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, width, height, extra in SHOTS:
            out = out_dir / name
            screenshot(html_path, out, width, height, extra, tmp_path / f"profile-{width}")
            size = out.stat().st_size
            print(f"{out} {width}x{height} {size // 1024} KiB")
            if size > MAX_BYTES:
                print(f"  warning: larger than {MAX_BYTES // 1024} KiB; lower the height", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
