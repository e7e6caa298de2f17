"""Small cells that stay small: a "<5" on the results page or its CSV cannot be
undone by subtraction, whether of two overlapping custom periods or of the step rows from the weekly
total; the retired "Step figures" page; the sending overview's counts for auditors; and dates that
would overflow are a 400, never a 500."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
import time_machine

from nurture import small_cells
from nurture.models import Delivery
from nurture.services.results import results_summarise
from tests.helpers.scheduler import series
from tests.helpers.staff import AUDITORS, CONTENT_EDITORS, SUBSCRIBER_CARE, staff_user, verified_login
from tests.nurture.admin.test_results import people, send

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=dt_timezone.utc)
URL = "/admin/nurture/results/"
MARKS = (small_cells.SUPPRESSED, small_cells.HIDDEN)


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.NURTURE_RESULTS_LEAVE_WINDOW_DAYS = 7


@pytest.fixture
def auditor(client):
    user = staff_user("auditor", AUDITORS)
    verified_login(client, user)
    return user


def csv_rows(client, **params) -> list[list[str]]:
    response = client.get(URL, {**params, "format": "csv"})
    assert response.status_code == 200, response.content[:300]
    return list(csv.reader(io.StringIO(response.content.decode())))


def table(rows: list[list[str]], caption: str) -> list[list[str]]:
    start = rows.index([caption]) + 2  # caption, header, then the rows up to the blank line
    end = next((i for i in range(start, len(rows)) if not rows[i]), len(rows))
    return rows[start:end]


def possible_values(shown: str) -> set[int]:
    """What a reader can tell about a count from how the page shows it (rounded to 5)."""
    if shown == small_cells.SUPPRESSED:
        return set(range(1, small_cells.MIN_CELL))
    n = int(shown)
    return {0} if n == 0 else {v for v in range(max(small_cells.MIN_CELL, n - 2), n + 3)}


def test_overlapping_custom_periods_do_not_give_away_a_small_day(client, auditor):
    """11-02 had 6 emails of step #1 and 11-03 had 2. Subtracting 11-02 from 11-02..11-03 must not say 2."""
    en = series("in_treatment", [(0, ["a"]), (3, ["b"])])
    send(people(en, 6, prefix="a"), en.steps.get(position=0), datetime(2026, 11, 2, 10, tzinfo=dt_timezone.utc))
    send(people(en, 2, prefix="b"), en.steps.get(position=0), datetime(2026, 11, 3, 10, tzinfo=dt_timezone.utc))
    results_summarise(now=NOW, rebuild=True)
    with time_machine.travel(NOW, tick=False):
        both = table(csv_rows(client, series=en.pk, start="2026-11-02", end="2026-11-03"), "Per step")[0][2]
        first = table(csv_rows(client, series=en.pk, start="2026-11-02", end="2026-11-02"), "Per step")[0][2]
        second = table(csv_rows(client, series=en.pk, start="2026-11-03", end="2026-11-03"), "Per step")[0][2]
    assert second == small_cells.SUPPRESSED
    assert (both, first) == ("10", "5")  # 8 and 6, rounded: the exact counts are never shown
    # The attack: every small count for 11-03 is as consistent with what was shown as the true one.
    candidates = {b - a for b in possible_values(both) for a in possible_values(first)} & possible_values(second)
    assert candidates == {1, 2, 3, 4}


def test_the_named_periods_cannot_be_subtracted_either(client, auditor):
    """30 days minus the 7 inside them: 2 emails 20 days ago, 6 this week."""
    en = series("in_treatment", [(0, ["a"])])
    send(people(en, 2, prefix="a"), en.steps.get(position=0), NOW - timedelta(days=20))
    send(people(en, 6, prefix="b"), en.steps.get(position=0), NOW - timedelta(days=2))
    results_summarise(now=NOW, rebuild=True)
    with time_machine.travel(NOW, tick=False):
        month = table(csv_rows(client, series=en.pk, period="30d"), "Per step")[0][2]
        week = table(csv_rows(client, series=en.pk, period="7d"), "Per step")[0][2]
    assert (month, week) == ("10", "5")
    assert {b - a for b in possible_values(month) for a in possible_values(week)} & set(range(1, 5)) == {1, 2, 3, 4}


def test_the_weekly_total_minus_the_step_rows_does_not_give_away_a_small_step(client, auditor):
    en = series("in_treatment", [(0, ["a"]), (3, ["b"]), (3, ["c"])])
    es = series("in_treatment", [(0, ["a"])], language="es")
    day = datetime(2026, 11, 18, 10, tzinfo=dt_timezone.utc)
    for position, n in ((0, 20), (1, 3), (2, 9)):
        send(people(en, n, prefix=f"p{position}-"), en.steps.get(position=position), day)
    send(people(es, 30, prefix="es"), es.steps.get(position=0), day)
    results_summarise(now=NOW, rebuild=True)
    with time_machine.travel(NOW, tick=False):
        rows = csv_rows(client, series=en.pk, period="7d")
    steps = table(rows, "Per step")
    weekly = table(rows, "Emails sent per week, by stage and language")
    sent = [row[2] for row in steps]
    en_weeks = [row[1] for row in weekly]
    assert sent[1] == small_cells.SUPPRESSED
    # The attack: the weeks add up to the steps' sends; with every other cell shown, the "<5" would follow.
    unknowns = [cell for cell in sent + en_weeks if cell in MARKS]
    assert len(unknowns) >= 2
    # Every row and column of the step table with a "<5" holds another hidden cell (or only zeros besides).
    counts = [row[2:] for row in steps]
    for line in [*counts, *zip(*counts)]:
        if sum(cell in MARKS for cell in line) == 1:
            assert all(cell in MARKS or cell == "0" for cell in line)
    # The comparison table hides the same cells: no other table gives them back.
    compare = table(rows, "The same step across stages and languages")
    assert [row[1] for row in compare] == sent
    # And the Spanish series, which has no small cell, shows its counts as they are.
    assert [row[2] for row in weekly] == ["0", "30"]


def test_the_same_cells_are_hidden_whichever_series_the_page_is_about(client, auditor):
    en = series("in_treatment", [(0, ["a"]), (3, ["b"])])
    es = series("in_treatment", [(0, ["a"])], language="es")
    day = datetime(2026, 11, 18, 10, tzinfo=dt_timezone.utc)
    send(people(en, 12, prefix="a"), en.steps.get(position=0), day)
    send(people(en, 2, prefix="b"), en.steps.get(position=1), day)
    send(people(es, 7, prefix="c"), es.steps.get(position=0), day)
    results_summarise(now=NOW, rebuild=True)
    with time_machine.travel(NOW, tick=False):
        seen = [csv_rows(client, series=s.pk, period="7d") for s in (en, es)]
    for caption in ("Emails sent per week, by stage and language", "The same step across stages and languages"):
        assert table(seen[0], caption) == table(seen[1], caption)
    assert "12" not in [row[1] for row in table(seen[0], "Emails sent per week, by stage and language")]


def test_the_step_figures_page_is_retired_and_content_editors_see_no_raw_counts(client):
    verified_login(client, staff_user("editor", CONTENT_EDITORS))
    assert client.get("/admin/nurture/stepfigures/").status_code == 404


@pytest.mark.parametrize("params", [
    {"start": "9999-01-01", "end": "9999-12-31"},
    {"start": "9999-12-31", "end": "9999-12-31"},
    {"start": "9999-01-01", "end": "9999-01-01", "format": "csv"},
    {"start": "9999-12-30", "end": "9999-12-31", "format": "csv"},
    {"start": "0001-01-01", "end": "0001-12-31"},
    {"start": "0001-01-03", "end": "0001-01-04", "format": "csv"},
    {"start": "2026-11-02", "end": "9999-12-31"},
])
def test_dates_that_would_overflow_are_a_400_naming_the_field(client, auditor, params):
    series("in_treatment", [(0, ["a"])])
    with time_machine.travel(NOW, tick=False):
        response = client.get(URL, params)
    assert response.status_code == 400
    assert "start:" in response.content.decode() or "end:" in response.content.decode()


def test_the_sending_overview_protects_small_counts_for_auditors_only(client):
    en = series("in_treatment", [(0, ["a"])])
    es = series("in_treatment", [(0, ["a"])], language="es")
    now = datetime.now(dt_timezone.utc)
    send(people(en, 9, prefix="a"), en.steps.get(position=0), now - timedelta(days=1))
    send(people(es, 2, prefix="b"), es.steps.get(position=0), now - timedelta(days=1))
    big = series("recently_diagnosed", [(0, ["a"])])
    send(people(big, 12, prefix="c"), big.steps.get(position=0), now - timedelta(days=1))
    Delivery.objects.filter(subscriber__email__startswith="a0").update(status="failed")
    url = "/admin/nurture/overview/"
    verified_login(client, staff_user("auditor", AUDITORS))
    page = client.get(url)
    assert page.status_code == 200
    cells = page.context["table"]
    es_row = next(r for r in cells if r["series"] == es)
    en_row = next(r for r in cells if r["series"] == en)
    assert small_cells.SUPPRESSED in es_row["deliveries"]  # 2 sent
    for line in [es_row["deliveries"], en_row["deliveries"], es_row["subscribers"], en_row["subscribers"],
                 page.context["totals"]["deliveries"], page.context["totals"]["subscribers"]]:
        if sum(cell in MARKS for cell in line) == 1:
            assert all(cell in MARKS or cell == 0 for cell in line), line
    assert 2 not in es_row["deliveries"] and 1 not in en_row["deliveries"]
    big_row = next(r for r in cells if r["series"] == big)
    assert 12 not in big_row["deliveries"] and 10 in big_row["deliveries"], big_row  # 12 sent, shown rounded
    client.logout()
    verified_login(client, staff_user("care", SUBSCRIBER_CARE))
    care = client.get(url).context["table"]
    assert 2 in next(r for r in care if r["series"] == es)["deliveries"]  # subscriber care: the exact counts
