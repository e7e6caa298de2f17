"""A per-client limit on POSTs to the pages a link opens: 320 carer requests
from one link in 89 s mailed 276 strangers. Over NURTURE_TOKEN_POST_RATE the answer is 429 with
Retry-After and a plain page; stopping emails (unsubscribe, a carer's stop) is never refused."""
from __future__ import annotations

import pytest
from django.core import mail

from nurture import tokens
from nurture.models import CarerHandoff, Subscriber
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber(settings):
    settings.NURTURE_TOKEN_POST_RATE = "3/10m"
    return active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]), first_name="Ana")


def test_posts_to_a_token_page_over_the_limit_get_429_with_when_to_retry(client, subscriber):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    for n in range(3):
        response = client.post(f"/preferences/{token}/", {"action": "carer", "carer_email": f"s{n}@example.net", "mode": "as_well"})
        assert response.status_code != 429
    refused = client.post(f"/preferences/{token}/", {"action": "carer", "carer_email": "s9@example.net", "mode": "as_well"})
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= 600
    html = refused.content.decode()
    assert "Try again in" in html and "unsubscribe link" in html
    assert not CarerHandoff.objects.filter(carer_email="s9@example.net").exists()
    # The limit is per client, across links and pages: the pause page of the same person is refused too.
    pause = tokens.make_token(purpose=tokens.PAUSE, subscriber_id=subscriber.pk)
    assert client.post(f"/pause/{pause}/", {"weeks": "2"}).status_code == 429
    # Another client is not affected.
    assert client.post(f"/pause/{pause}/", {"weeks": "2"}, REMOTE_ADDR="192.0.2.77").status_code != 429


def test_a_get_is_never_counted(client, subscriber):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    for _ in range(10):
        assert client.get(f"/preferences/{token}/").status_code == 200


def test_unsubscribing_always_works_even_over_the_limit(client, subscriber):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    for _ in range(5):
        client.post(f"/preferences/{token}/", {"action": "nonsense"})
    assert client.post(f"/preferences/{token}/", {"action": "nonsense"}).status_code == 429
    # The preference page's own "Stop all emails" button still works too.
    stop = client.post(f"/preferences/{token}/", {"action": "unsubscribe_confirmed"})  # "Yes, stop" after it asked
    assert stop.status_code == 200 and Subscriber.objects.get(pk=subscriber.pk).status == "unsubscribed"
    Subscriber.objects.filter(pk=subscriber.pk).update(status="active")
    unsubscribe = tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    for _ in range(3):  # a mail client's one-click POST, retried
        assert client.post(f"/unsubscribe/{unsubscribe}/", {"List-Unsubscribe": "One-Click"}).status_code != 429
    assert Subscriber.objects.get(pk=subscriber.pk).status == "unsubscribed"


def test_the_429_page_is_in_spanish_for_a_spanish_page(client, subscriber):
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    for _ in range(4):
        response = client.post(f"/preferences/{token}/", {"action": "nonsense"}, HTTP_ACCEPT_LANGUAGE="es")
    assert response.status_code == 429
    assert "Inténtelo de nuevo" in response.content.decode() and "darse de baja" in response.content.decode()
    assert mail.outbox == []
