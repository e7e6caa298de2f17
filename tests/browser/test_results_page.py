"""The results page in a real browser at desktop width, light and dark: the charts draw with the
page's stylesheet (no style attributes, no script), the step where most people leave is marked,
and every chart has its table beside it.

    NURTURE_ADMIN_SCREENSHOTS=docs/img scripts/run_tests.py tests/browser/test_results_page.py

writes docs/img/results-desktop.png and results-desktop-dark.png (linked from docs/admin.md)."""
from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from nurture.models import Delivery, ProviderEvent, Series, Subscriber
from nurture.services.results import results_summarise
from tests.helpers.browser import logged_in_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("NURTURE_ADMIN_SCREENSHOTS")
DESKTOP = {"width": 1400, "height": 1000}


def _fill(series: Series, *, people: int, leave_after: dict[int, int], seed: int) -> None:
    """`people` start the series at spread-out days; after step k, leave_after[k] of them unsubscribe."""
    now = timezone.now()
    steps = list(series.steps.order_by("position"))
    cohort = Subscriber.objects.bulk_create(
        Subscriber(email=f"p{seed}-{i}@private.example", stage=series.stage, language=series.language,
                   status="active", series=series, confirmed_at=now - timedelta(days=80))
        for i in range(people)
    )
    remaining = list(cohort)
    deliveries = []
    for k, step in enumerate(steps):
        if not remaining:
            break
        for i, person in enumerate(remaining):
            deliveries.append(Delivery(subscriber=person, step=step, status="sent",
                                       sent_at=now - timedelta(days=60 - 4 * k, hours=i % 48)))
        leaving, remaining = remaining[: leave_after.get(k, 0)], remaining[leave_after.get(k, 0):]
        Subscriber.objects.filter(pk__in=[p.pk for p in leaving]).update(
            status="unsubscribed", unsubscribed_at=now - timedelta(days=60 - 4 * k - 2)
        )
        remaining = remaining[: max(0, len(remaining) - 3)]  # a few have not reached the next step yet
    made = Delivery.objects.bulk_create(deliveries)
    ProviderEvent.objects.bulk_create(  # the provider reports most as delivered, a few bounced
        ProviderEvent(provider="test", event_id=f"e{seed}-{i}", event_type="bounced" if i % 40 == 7 else "delivered",
                      delivery=d, timestamp=now)
        for i, d in enumerate(made) if i % 25
    )


@pytest.fixture
def results_page(browser, live_server, client, django_user_model, settings):
    settings.SITE_URL = live_server.url
    editor = django_user_model.objects.create_user("editor", "editor@staff.example", "pw-long-enough", is_staff=True)
    # Transactional tests empty the tables after each test, so the role the migrations create may be
    # gone: made again here with the one permission the page needs (tests/nurture/admin/test_results.py
    # checks the role holds it).
    role, _ = Group.objects.get_or_create(name="Content editors")
    role.permissions.add(Permission.objects.get(content_type__app_label="nurture", codename="view_results"))
    editor.groups.add(role)
    pages = []

    def open_page(color_scheme: str):
        page = logged_in_page(browser=browser, live_server=live_server, client=client, user=editor, viewport=DESKTOP)
        page.emulate_media(color_scheme=color_scheme)
        pages.append(page)
        return page

    yield open_page
    for page in pages:
        page.context.close()


def _shot(page, tmp_path, name: str) -> None:
    page.screenshot(path=os.path.join(SHOTS or str(tmp_path), f"{name}.png"), full_page=True)


def test_results_page_at_desktop_width_in_light_and_dark(results_page, live_server, tmp_path):
    light = results_page("light")  # loads the default library: the series exist from here
    english = Series.objects.get(stage="in_treatment", language="en")
    _fill(english, people=160, leave_after={0: 6, 2: 19, 4: 7}, seed=1)
    _fill(Series.objects.get(stage="in_treatment", language="es"), people=70, leave_after={1: 5}, seed=2)
    _fill(Series.objects.get(stage="recently_diagnosed", language="en"), people=90, leave_after={0: 5}, seed=3)
    results_summarise(rebuild=True)

    url = f"{live_server.url}/admin/nurture/results/?series={english.pk}&period=90d"
    light.goto(url)
    light.locator("#chart-funnel").wait_for(timeout=10_000)
    for chart in ("#chart-funnel", "#chart-leave", "#chart-weekly"):
        assert light.locator(f"{chart}[role=img] title").count() == 1
    assert "#3" in light.locator("#results-highest").inner_text()  # 19 of the people step 3 reached left
    assert light.locator("#results-steps tr.is-highlighted th").inner_text().startswith("#3")
    assert light.locator("#results-weekly tbody tr").count() >= 12 and light.locator("#results-compare tbody tr").count() >= 5
    # The stylesheet (not style attributes) colours the bars: the highlighted one red.
    fill = "el => getComputedStyle(el).fill"
    assert light.locator("#chart-leave rect.is-highlighted").evaluate(fill) == "rgb(185, 28, 28)"
    assert light.locator("#chart-funnel rect.chart-bar:not(.is-highlighted)").first.evaluate(fill) == "rgb(37, 99, 235)"
    assert "private.example" not in light.content()
    _shot(light, tmp_path, "results-desktop")

    dark = results_page("dark")
    dark.goto(url)
    dark.locator("#chart-funnel").wait_for(timeout=10_000)
    assert dark.locator("#chart-leave rect.is-highlighted").evaluate(fill) == "rgb(248, 113, 113)"
    text_colour = dark.locator("#chart-funnel text").first.evaluate(fill)
    assert text_colour != "rgb(51, 51, 51)" and text_colour != "rgb(0, 0, 0)"  # readable on the dark background
    _shot(dark, tmp_path, "results-desktop-dark")
