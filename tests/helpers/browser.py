"""Headless Chromium (Debian's package) driven by Playwright, for tests of real pages."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = shutil.which("chromium")
    if not path:
        reason = "needs Debian's chromium: run `bash scripts/install_browser.sh` as root"
        if REQUIRE_SERVICES:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole run (each test opens its own context): starting the browser
    costs more than most page checks."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an event loop on this thread; the test's own ORM reads are
        # still synchronous, so Django's async-safety guard would refuse them.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            instance = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
            try:
                yield instance
            finally:
                instance.close()


def logged_in_page(*, browser, live_server, client, user, viewport: dict, new_context=None):
    """A browser page logged in as `user` (through the test client's session), with the default
    library loaded and the render cache empty. The caller closes page.context. new_context(browser,
    viewport=...) makes the context (tests/helpers/axe.py axe_context), browser.new_context if None."""
    from nurture.emails.cache import render_cache
    from support.library import load_default_library

    load_default_library()
    render_cache.clear()
    from tests.helpers.staff import verified_login

    verified_login(client, user)  # signed in with a second factor, as the admin requires with DEBUG off
    context = new_context(browser, viewport=viewport) if new_context else browser.new_context(viewport=viewport)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    return context.new_page()
