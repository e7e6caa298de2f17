"""The Content Security Policy in a real browser: the public pages and the admin pages staff use
load their scripts and styles (from static files) and the browser reports no violation."""
from __future__ import annotations

import pytest

from nurture.models import Step
from tests.helpers.browser import logged_in_page
from tests.helpers.staff import staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _watch(page) -> list[str]:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if "Content Security Policy" in message.text else None)
    return violations


def test_public_pages_load_their_styles_and_script_without_violations(browser, live_server, settings):
    settings.SITE_URL = live_server.url
    context = browser.new_context(viewport={"width": 390, "height": 844}, timezone_id="Europe/Madrid")
    page = context.new_page()
    violations = _watch(page)
    page.goto(live_server.url + "/")
    page.wait_for_load_state("networkidle")
    assert page.input_value("#id_time_zone") == "Europe/Madrid"  # nurture/static/nurture/signup.js ran
    # nurture/static/nurture/site.css applied: the submit button is the accent colour, not the default.
    assert page.eval_on_selector("#main button[type=submit]", "b => getComputedStyle(b).minHeight") == "48px"
    context.close()
    assert violations == []


def test_admin_pages_run_without_violations(browser, live_server, client, settings):
    settings.SITE_URL = live_server.url
    lead = staff_user("lead", superuser=True)
    page = logged_in_page(browser=browser, live_server=live_server, client=client, user=lead, viewport={"width": 1300, "height": 1000})
    violations = _watch(page)
    step = Step.objects.filter(series__language="en").first()
    for path in (
        "/admin/", f"/admin/nurture/step/{step.pk}/change/", "/admin/nurture/subscriber/", "/admin/nurture/overview/",
        f"/admin/nurture/email-preview/step/{step.pk}/", "/admin/nurture/auditentry/", "/admin/content/article/",
    ):
        page.goto(live_server.url + path)
        page.wait_for_load_state("networkidle")
    # The article list on the step page (by title), and the preview's framed email, still work.
    page.goto(f"{live_server.url}/admin/nurture/step/{step.pk}/change/")
    assert page.locator("select#id_steparticle_set-0-article option:checked").inner_text() == f"{step.articles.first().title} [en]"
    page.goto(f"{live_server.url}/admin/nurture/email-preview/step/{step.pk}/")
    page.frame_locator("iframe").locator("h1").wait_for(timeout=10_000)
    page.context.close()
    assert violations == []
