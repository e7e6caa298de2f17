"""A consent record for every change of a person's standing: a change of
name is recorded like a change of stage or cadence; suppression by an erasure-era spelling,
staff or the provider refusing the address is recorded with its cause (webhook events:
tests/nurture/webhooks/test_hostile_payloads.py)."""
from __future__ import annotations

import pytest

from nurture.models import ConsentRecord
from nurture.services import subscribers as services
from nurture.services.suppression import address_suppress
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber():
    return active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Ana")


def test_a_change_of_name_is_a_consent_record_and_the_same_name_is_not(subscriber):
    for name in ("Ana", "Anita", "Anita"):
        services.subscriber_update_preferences(
            subscriber_id=subscriber.pk, first_name=name, stage="in_treatment", language="en", cadence="as_planned"
        )
    records = ConsentRecord.objects.filter(subscriber=subscriber, kind="name_change")
    assert records.count() == 1
    assert "Anita" not in records.get().consent_text  # the record says what changed, not the name


@pytest.mark.parametrize("source", ["provider_refused", "admin"])
def test_a_suppression_records_its_cause(subscriber, source):
    address_suppress(email="ana@example.org", reason="test", source=source)
    assert list(ConsentRecord.objects.filter(subscriber=subscriber).values_list("kind", "source")) == [("suppressed", source)]
