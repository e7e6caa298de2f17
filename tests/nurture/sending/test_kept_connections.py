"""A pool thread's HTTP API connection outlives its batch (nurture/sending/calls.py, Connections):
the next batch uses it again while the settings are the same and it was used moments ago; any other
connection (SMTP) ends with its batch."""
from __future__ import annotations

import pytest

from nurture.sending import calls
from nurture.sending.http_session import OneEndpointSession

pytestmark = pytest.mark.django_db


@pytest.fixture
def postmark(settings):
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "t", "POSTMARK_API_URL": "http://127.0.0.1:9/"}
    calls._local.__dict__.clear()  # this thread starts with no kept connection
    yield settings
    calls._local.__dict__.clear()


def a_batch():
    """The connection a pool thread gets for one batch, and the batch's own ending."""
    connections = calls.Connections()
    connection = connections.for_this_thread()
    assert connections.for_this_thread() is connection  # one per thread within a batch
    connections.close()
    return connection


def test_the_next_batch_uses_the_same_http_connection_and_builds_payloads_as_before(postmark):
    first = a_batch()
    assert type(first.session) is OneEndpointSession
    builder = first._anymail_build_message_payload
    second = a_batch()
    assert second is first and second.session is not None  # not closed by the batch's end
    assert second._anymail_build_message_payload is builder  # attached again, not wrapped twice
    assert second.build_message_payload.__closure__ is not None
    assert builder.__func__ is type(second).build_message_payload


def test_a_connection_idle_too_long_or_made_from_other_settings_is_replaced_and_closed(postmark, monkeypatch):
    first = a_batch()
    monkeypatch.setattr(calls.Connections, "KEEP_IDLE_SECONDS", 0.0)
    second = a_batch()
    assert second is not first and first.session is None  # anymail's close
    monkeypatch.setattr(calls.Connections, "KEEP_IDLE_SECONDS", 60.0)
    postmark.ANYMAIL = {**postmark.ANYMAIL, "POSTMARK_API_URL": "http://127.0.0.1:10/"}
    third = a_batch()
    assert third is not second and second.session is None
    assert third.api_url.startswith("http://127.0.0.1:10/")


def test_an_smtp_connection_ends_with_its_batch(settings, monkeypatch):
    from django.core.mail.backends.smtp import EmailBackend

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    opened, closed = [], []
    monkeypatch.setattr(EmailBackend, "open", lambda self: opened.append(self))  # no SMTP server needed
    monkeypatch.setattr(EmailBackend, "close", lambda self: closed.append(self))
    calls._local.__dict__.clear()
    try:
        first = a_batch()
        assert closed == [first]  # closed by its batch's end
        second = a_batch()
    finally:
        calls._local.__dict__.clear()
    assert second is not first and opened == [first, second] and closed[-1] is second
