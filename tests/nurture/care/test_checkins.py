""""Has anything changed?": due at the stage's interval and when the series runs out, never to someone
paused and never more often than the interval; each answer is its own opaque link to a page; a new
stage moves them through the stage-change rule with a consent record; no stage in any URL."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from content.models import Stage
from nurture.models import ConsentRecord, Subscriber
from nurture.selectors.subscribers import subscribers_checkin_due
from nurture.services import checkins
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _weeks(settings):
    settings.NURTURE_DAY_SECONDS = 86400
    settings.NURTURE_CHECKIN_WEEKS = {"recently_diagnosed": 8, "in_treatment": 8, "in_remission": 0}


@pytest.fixture
def ana():
    person = active_subscriber("ana@example.org", series("recently_diagnosed", [(0, ["a1"]), (3, ["a2"])]))
    series("in_treatment", [(0, ["a1"]), (3, ["t2"])])
    Subscriber.objects.filter(pk=person.pk).update(confirmed_at=timezone.now() - timedelta(weeks=9),
                                                   next_send_at=timezone.now() + timedelta(days=3))
    return Subscriber.objects.get(pk=person.pk)


def test_due_after_the_interval_once_and_not_while_paused(ana):
    assert list(subscribers_checkin_due(now=timezone.now())) == [ana]
    assert checkins.checkins_send_due() == 1
    assert checkins.checkins_send_due() == 0  # never more often than the interval
    [message] = mail.outbox
    assert message.subject == "Has anything changed?" and message.to == ["ana@example.org"]
    urls = re.findall(r"https://\S+/checkin/[^/\s]+/", message.body)
    assert len(urls) == 4  # three situations and "nothing has changed"
    assert not any(stage in url for url in urls for stage in Stage.values)  # no stage in a URL
    Subscriber.objects.filter(pk=ana.pk).update(last_checkin_at=timezone.now() - timedelta(weeks=9), status="paused")
    assert checkins.checkins_send_due() == 0


def test_due_when_the_series_runs_out_but_not_before_the_interval_since_the_last(ana):
    Subscriber.objects.filter(pk=ana.pk).update(confirmed_at=timezone.now() - timedelta(weeks=2), next_send_at=None,
                                                last_sent_at=timezone.now())
    assert checkins.checkins_send_due() == 1
    Subscriber.objects.filter(pk=ana.pk).update(last_checkin_at=timezone.now() - timedelta(weeks=3))
    assert checkins.checkins_send_due() == 0


def test_stage_with_no_interval_gets_none(settings, ana):
    settings.NURTURE_CHECKIN_WEEKS = {}
    assert checkins.checkins_send_due() == 0


def test_answer_page_get_changes_nothing_post_moves_with_a_consent_record(client, ana):
    checkins.checkins_send_due()
    urls = re.findall(r"https://guide\.example\.org(/checkin/[^/\s]+/)", mail.outbox[0].body)
    in_treatment = urls[1]  # the order of Stage.values: recently diagnosed, in treatment, in remission
    page = client.get(in_treatment)
    assert page.status_code == 200 and "In treatment" in page.content.decode()
    assert Subscriber.objects.get(pk=ana.pk).stage == "recently_diagnosed"
    assert client.post(in_treatment).status_code == 200
    ana.refresh_from_db()
    assert ana.stage == "in_treatment" and ana.series.stage == "in_treatment"
    assert ConsentRecord.objects.filter(subscriber=ana, kind="stage_change", source="checkin").count() == 1
    same = urls[3]
    assert "Nothing has changed" in client.post(same).content.decode()
    assert ConsentRecord.objects.filter(subscriber=ana, kind="stage_change").count() == 1


def test_a_bad_checkin_link_gets_the_plain_page(client):
    assert client.get("/checkin/not-a-token/").status_code == 400


def test_the_journey_preview_lists_the_check_ins(client, ana):
    from nurture.admin.base import PREVIEW_EMAILS
    from tests.helpers.staff import signed_in_with_permissions

    signed_in_with_permissions(client, PREVIEW_EMAILS)
    page = client.get("/admin/nurture/email-preview/journey/", {"stage": "recently_diagnosed", "language": "en",
                                                                 "quiet_day": ["5", "6"], "time_of_day": "morning"})
    body = page.content.decode()
    assert page.status_code == 200 and 'id="journey-checkins"' in body and "Every 8 weeks" in body
    assert 'value="5" checked' in body and 'value="morning" selected' in body
