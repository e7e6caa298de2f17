"""Signed tokens for the links in emails. They carry only a subscriber id and a purpose, never the stage."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing


class TokenError(Exception):
    """The link was tampered with, belongs to another purpose, or has expired."""

    def __init__(self, *, expired: bool = False):
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
VIEW_ONLINE = "view"
PAUSE = "pause"
# A carer's links carry the hand-off id as `extra`: the confirmation (expires like CONFIRM) and the
# carer's own "stop" link (never expires).
CARER_CONFIRM = "carer-confirm"
CARER_STOP = "carer-stop"
EXPIRING = (CONFIRM, CARER_CONFIRM)


def make_token(*, purpose: str, subscriber_id: int, extra: str = "") -> str:
    payload = [subscriber_id, extra] if extra else [subscriber_id]
    return signing.dumps(payload, salt=f"nurture.{purpose}", compress=False)


def read_token(*, purpose: str, token: str) -> tuple[int, str]:
    """Returns (subscriber_id, extra). Confirmation links expire; opt-out links never do."""
    max_age = timedelta(days=settings.NURTURE_CONFIRM_MAX_AGE_DAYS) if purpose in EXPIRING else None
    try:
        payload = signing.loads(token, salt=f"nurture.{purpose}", max_age=max_age)
    except signing.SignatureExpired as exc:
        raise TokenError(expired=True) from exc
    except signing.BadSignature as exc:
        raise TokenError() from exc
    if not isinstance(payload, list) or not payload or not isinstance(payload[0], int):
        raise TokenError()
    return payload[0], (payload[1] if len(payload) > 1 else "")


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"
