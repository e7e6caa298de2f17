"""The re-check leaves out columns the sender never reads (nurture/sending/recheck.py,
NOT_FOR_SENDING). A left-out column that something reads would cost a query per email: building the
emails of a re-checked batch, varied as the engine sends them, asks the database nothing, and each
email is the one built from the full rows."""
from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from nurture.models import Delivery, Subscriber
from nurture.sending.handover import BatchOutcome, build_each
from nurture.sending.ledger import deliveries_claim
from nurture.sending.recheck import NOT_FOR_SENDING, deliveries_recheck
from tests.nurture.sending.test_single_payloads import emails_of, varied_deliveries

pytestmark = pytest.mark.django_db


def test_building_a_rechecked_batch_reads_no_left_out_column_and_builds_the_same_emails(settings):
    settings.NURTURE_BATCH_SEND = False
    ids = varied_deliveries()
    Subscriber.objects.filter(email="b@example.org").update(paused_until=None, treatment_date=timezone.now().date())
    expected = {m.to[0]: (m.subject, m.body, m.alternatives, m.extra_headers.get("List-Unsubscribe"))
                for m in emails_of(ids)}
    stamp = timezone.now()
    claimed = deliveries_claim(delivery_ids=ids, stamp=stamp)
    items, skips = deliveries_recheck(delivery_ids=claimed, stamp=stamp)
    assert len(items) == len(ids) == 7 and not skips
    deferred = items[0].delivery.get_deferred_fields()
    assert {"queued_at", "failure_reason"} <= deferred  # the columns are really left out
    with CaptureQueriesContext(connection) as queries:
        built = build_each(items, stamp=stamp, outcome=BatchOutcome())
        for item in built:
            item.message.message()  # the whole MIME message, headers included
    assert len(built) == 7
    assert queries.captured_queries == []
    got = {i.message.to[0]: (i.message.subject, i.message.body, i.message.alternatives,
                             i.message.extra_headers.get("List-Unsubscribe")) for i in built}
    assert got.keys() == expected.keys()
    for to in got:  # the same email, but for the per-email tokens in its links
        assert got[to][0] == expected[to][0]
        assert len(got[to][1]) == len(expected[to][1])


def test_every_left_out_column_exists():
    from django.core.exceptions import FieldDoesNotExist

    for path in NOT_FOR_SENDING:
        model = Delivery
        *relations, name = path.split("__")
        for relation in relations:
            model = model._meta.get_field(relation).related_model
        try:
            model._meta.get_field(name)
        except FieldDoesNotExist:  # pragma: no cover - the assertion below says which
            pytest.fail(f"{path} names no field")


def test_a_batch_reads_each_step_once_and_its_rows_share_it(settings, monkeypatch):
    """The re-check reads the batch's steps (with their series) in one query, not joined to every
    row: the rows of one step share one instance, the reads are the same four whatever the size (rows, steps, suppressions,
    articles),
    and a row whose step went away between the reads is skipped, not a crash."""
    from nurture.sending import recheck

    ids = varied_deliveries()
    stamp = timezone.now()
    claimed = deliveries_claim(delivery_ids=ids, stamp=stamp)
    with CaptureQueriesContext(connection) as queries:
        items, skips = deliveries_recheck(delivery_ids=claimed, stamp=stamp)
    assert len(items) == 7 and not skips and len(queries.captured_queries) == 4
    by_step = {}
    for item in items:
        by_step.setdefault(item.delivery.step_id, set()).add(id(item.delivery.step))
        assert item.delivery.step.pk == item.delivery.step_id
        assert item.delivery.step.series.language in ("en", "es")
    assert len(by_step) == 3 and all(len(instances) == 1 for instances in by_step.values())

    monkeypatch.setattr(recheck, "_steps_by_id", lambda rows: {})  # every step gone since the first read
    items, skips = deliveries_recheck(delivery_ids=claimed, stamp=stamp)
    assert items == [] and sorted(skips["the step was removed"]) == sorted(claimed)
