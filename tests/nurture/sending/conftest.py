"""Fixtures shared by the sending tests."""
from __future__ import annotations

import pytest

from support.fake_provider import CLIENT_TIMEOUT, FakeProvider

WEBHOOK_SECRET = "hook:secret"


@pytest.fixture
def postmark(settings):
    """anymail's real Postmark backend pointed at the fake provider on 127.0.0.1 (both endpoints:
    /email and /email/batch); its webhook view takes WEBHOOK_SECRET."""
    with FakeProvider() as fake:
        settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
        settings.ANYMAIL = {**settings.ANYMAIL, "POSTMARK_SERVER_TOKEN": "fake-token", "POSTMARK_API_URL": fake.url,
                            "WEBHOOK_SECRET": WEBHOOK_SECRET}
        settings.EMAIL_TIMEOUT = CLIENT_TIMEOUT
        yield fake
