"""The tokens in the links we email: opaque, bound to one purpose, expiring and revocable.

A token is the authenticated encryption of a small record (subscriber id, the subscriber's link
version, when it was issued, and an optional extra such as a delivery or sign-up request id), so
it carries no readable or guessable id and cannot be made without the secret key. The cipher is
AES-SIV (RFC 5297, deterministic authenticated encryption) from the `cryptography` package, with the
purpose as associated data and a key derived from SECRET_KEY and the purpose: a token made for one
purpose is meaningless for another. Tokens are read with SECRET_KEY and then each of
SECRET_KEY_FALLBACKS (key rotation, docs/security.md). Made by the same key, the same record gives
the same token.

Lifetimes (docs/security.md, "Public surface"):
- confirmation links: NURTURE_CONFIRM_MAX_AGE_DAYS;
- preference and view-online links (and any purpose added later): NURTURE_LINK_MAX_AGE_DAYS, and
  revoked when the subscriber's link_version changes ("send me new links") or the row is erased;
- unsubscribe links: no expiry (one-click unsubscribe must keep working long after the email);
  they die with the subscriber row (erase).

Old-format tokens (Django signing, `[id]` readable) are refused like any forgery, with one
exception so nobody loses their way out: an old-format *unsubscribe* link, signed with a key the
site still holds (the start-up check refuses weak keys), works for LEGACY_UNSUBSCRIBE_DAYS after it
was made. It can only unsubscribe; it shows nothing.
"""
from __future__ import annotations

import base64
import re
import struct
import time
from datetime import timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings
from django.core import signing
from django.utils.crypto import salted_hmac


class TokenError(Exception):
    """The link does not work. `expired` says whether it was ours but too old."""

    expired = False

    def __init__(self, message: str = "invalid"):
        super().__init__(message)


class TokenInvalid(TokenError):
    """Tampered with, made with another key or for another purpose, or an old format."""


class TokenRevoked(TokenInvalid):
    """Genuine, but its subscriber is gone or asked for new links since."""


class TokenExpired(TokenError):
    """Genuine but older than its purpose allows. `subscriber_id` lets the page offer to email a
    new link to the address on file; the page itself must show nothing about them."""

    expired = True

    def __init__(self, *, subscriber_id: int, purpose: str):
        super().__init__("expired")
        self.subscriber_id = subscriber_id
        self.purpose = purpose


CONFIRM = "confirm"
UNSUBSCRIBE = "unsubscribe"
PREFERENCES = "preferences"
VIEW_ONLINE = "view"
PAUSE = "pause"  # "Pause these emails" in every series email (like preferences: expiring, revocable)
# A carer's links carry the hand-off id as `extra`: the confirmation (expires like CONFIRM) and the
# carer's own "stop" link.
CARER_CONFIRM = "carer-confirm"
CARER_STOP = "carer-stop"
# The subscriber's links in their carer notices (hand-off id as `extra`): "cancel this", and for
# "instead of me" their own confirmation (expires like CONFIRM).
CARER_CANCEL = "carer-cancel"
CARER_APPROVE = "carer-approve"
# The web version of a carer's copy (its delivery id as `extra`): opens that copy only.
CARER_VIEW = "carer-view"
# "Has anything changed?": one link per answer, the answer sealed in `extra` (never a stage in a URL).
CHECKIN = "checkin"
# "Was this helpful?" and the impact question: `extra` is "<delivery id>:<question>" (expires like preferences).
FEEDBACK = "feedback"

# Purposes whose links stay valid only while the subscriber's link_version is unchanged.
NOT_REVOCABLE = {CONFIRM, UNSUBSCRIBE}

_FORMAT = 1
_HEADER = struct.Struct(">BQII")  # format, subscriber id, link version, issued (unix seconds)
_TAG_BYTES = 16
_MAX_TOKEN_CHARS = 400
_CANONICAL = re.compile(r"[A-Za-z0-9_-]+")  # unpadded URL-safe base64, as _seal writes it
# Unsubscribe links in emails sent before opaque tokens keep working this long (CAN-SPAM asks 30 days).
LEGACY_UNSUBSCRIBE_DAYS = 60


def max_age(purpose: str) -> timedelta | None:
    if purpose in (CONFIRM, CARER_CONFIRM, CARER_APPROVE):
        return timedelta(days=settings.NURTURE_CONFIRM_MAX_AGE_DAYS)
    if purpose == UNSUBSCRIBE:
        return None
    return timedelta(days=settings.NURTURE_LINK_MAX_AGE_DAYS)


@lru_cache(maxsize=64)
def _cipher(purpose: str, secret: str) -> AESSIV:
    # 64 bytes: AES-256-SIV (one half for the MAC, one for the cipher).
    return AESSIV(salted_hmac(f"nurture.tokens.{purpose}", b"", secret=secret, algorithm="sha512").digest())


def _seal(record: bytes, *, purpose: str, secret: str) -> str:
    sealed = _cipher(purpose, secret).encrypt(record, [purpose.encode()])
    return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


def _open(token: str, *, purpose: str) -> bytes:
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise TokenInvalid()
    if not _CANONICAL.fullmatch(token):
        raise TokenInvalid()
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenInvalid() from exc
    # One spelling per token: the decoder would also take "+" for "-", padding, and other values
    # of the last character's unused bits, so a link altered that way would still open the page.
    if base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=") != token:
        raise TokenInvalid()
    if len(sealed) < _TAG_BYTES + _HEADER.size:
        raise TokenInvalid()
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        try:
            return _cipher(purpose, secret).decrypt(sealed, [purpose.encode()])
        except InvalidTag:
            continue
    raise TokenInvalid()


def _legacy_unsubscribe(token: str) -> int | None:
    """The subscriber id of an old-format (Django signing) unsubscribe link made by a key the site
    still holds, at most LEGACY_UNSUBSCRIBE_DAYS ago; else None."""
    try:
        payload = signing.loads(
            token, salt=f"nurture.{UNSUBSCRIBE}", max_age=timedelta(days=LEGACY_UNSUBSCRIBE_DAYS)
        )
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if isinstance(payload, list) and len(payload) == 1 and type(payload[0]) is int:
        return payload[0]
    return None


def _current_link_version(subscriber_id: int) -> int | None:
    from nurture.models import Subscriber

    return Subscriber.objects.filter(pk=subscriber_id).values_list("link_version", flat=True).first()


def make_token(*, purpose: str, subscriber_id: int, extra: str = "", link_version: int | None = None) -> str:
    """An opaque token for `purpose`. Pass the subscriber's `link_version` when you hold the row
    (senders do), or it is read from the database for purposes that are revocable."""
    if purpose in NOT_REVOCABLE:
        link_version = 0
    elif link_version is None:
        link_version = _current_link_version(subscriber_id) or 0
    record = _HEADER.pack(_FORMAT, subscriber_id, link_version, int(time.time())) + extra.encode("utf-8")
    return _seal(record, purpose=purpose, secret=settings.SECRET_KEY)


def read_token(*, purpose: str, token: str) -> tuple[int, str]:
    """Returns (subscriber_id, extra), or raises TokenInvalid / TokenRevoked / TokenExpired.
    Expiry is decided before the database is asked, so an expired link says nothing about
    whether its subscriber still exists."""
    try:
        record = _open(token, purpose=purpose)
    except TokenInvalid:
        legacy_id = _legacy_unsubscribe(token) if purpose == UNSUBSCRIBE else None
        if legacy_id is None:
            raise
        return legacy_id, ""
    try:
        fmt, subscriber_id, link_version, issued = _HEADER.unpack_from(record)
        extra = record[_HEADER.size:].decode("utf-8")
    except (struct.error, UnicodeDecodeError) as exc:
        raise TokenInvalid() from exc
    if fmt != _FORMAT:
        raise TokenInvalid()
    limit = max_age(purpose)
    if limit is not None and time.time() - issued > limit.total_seconds():
        raise TokenExpired(subscriber_id=subscriber_id, purpose=purpose)
    if purpose not in NOT_REVOCABLE and _current_link_version(subscriber_id) != link_version:
        raise TokenRevoked()
    return subscriber_id, extra


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"
