"""A pause or a series change while an email is planned but not yet sent: the old plan never goes
out, and after a resume the same email comes, not the one after it."""
from __future__ import annotations

import pytest

from nurture.models import Delivery
from nurture.services import planning
from nurture import sending
from nurture.services import subscribers as subscriber_services
from tests.helpers.scheduler import active_subscriber, series, send_one

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def quick(fast_sending):
    pass


def plan_one():
    planned: list[int] = []
    planning.deliveries_plan_due(enqueue=planned.extend)
    return planned


def test_pause_with_a_queued_email_resumes_with_that_same_email(django_capture_on_commit_callbacks):
    the_series = series("in_treatment", [(0, ["p-first"]), (3, ["p-second"])])
    subscriber = active_subscriber("pause@example.org", the_series)
    with django_capture_on_commit_callbacks(execute=True):
        planned_ids = plan_one()
    [queued_id] = planned_ids
    subscriber_services.subscriber_pause(subscriber_id=subscriber.pk)
    assert not Delivery.objects.filter(pk=queued_id).exists()  # withdrawn, not skipped and lost
    assert send_one(delivery_id=queued_id).status == "not-claimed"

    subscriber_services.subscriber_resume(subscriber_id=subscriber.pk)
    with django_capture_on_commit_callbacks(execute=True):
        planned_ids = plan_one()
    [again] = planned_ids
    assert Delivery.objects.get(pk=again).step.position == 0
    assert send_one(delivery_id=again).status == "sent"


def test_series_change_with_a_queued_email_does_not_send_the_old_series(django_capture_on_commit_callbacks):
    old = series("in_treatment", [(0, ["s-old"])])
    new = series("in_remission", [(0, ["s-new"])])
    subscriber = active_subscriber("move@example.org", old)
    with django_capture_on_commit_callbacks(execute=True):
        planned_ids = plan_one()
    [queued_id] = planned_ids
    subscriber_services.subscriber_change_stage(subscriber_id=subscriber.pk, stage="in_remission")
    assert not Delivery.objects.filter(pk=queued_id).exists()
    with django_capture_on_commit_callbacks(execute=True):
        planned_ids = plan_one()
    [planned] = planned_ids
    delivery = Delivery.objects.get(pk=planned)
    assert delivery.step.series_id == new.pk
    assert send_one(delivery_id=planned).status == "sent"


def test_a_delivery_of_another_series_is_skipped_at_send_time(django_capture_on_commit_callbacks):
    old = series("in_treatment", [(0, ["x-old"])])
    new = series("in_remission", [(0, ["x-new"])])
    subscriber = active_subscriber("race@example.org", old)
    with django_capture_on_commit_callbacks(execute=True):
        planned_ids = plan_one()
    [queued_id] = planned_ids
    # As if the move landed between planning and sending, past the withdrawal.
    type(subscriber).objects.filter(pk=subscriber.pk).update(series=new, stage="in_remission")
    outcome = send_one(delivery_id=queued_id)
    assert outcome.status == "skipped"
    assert Delivery.objects.get(pk=queued_id).failure_reason == "subscriber moved to another series"


def test_staff_requeue_gives_a_fresh_set_of_attempts():
    the_series = series("in_treatment", [(0, ["r-first"])])
    subscriber = active_subscriber("requeue@example.org", the_series)
    delivery = Delivery.objects.create(subscriber=subscriber, step=the_series.steps.get(), status="failed", attempts=6)
    assert sending.deliveries_requeue(delivery_ids=[delivery.pk], enqueue=lambda ids: None) == 1
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("queued", 0)
