"""The tokens in the links we email: opaque, bound to one purpose, expiring and revocable.

A token is the authenticated encryption of a small record (subscriber id, the subscriber's link
version, when it was issued, and an optional extra such as a delivery or sign-up request id), so
it carries no readable or guessable id and cannot be made without the secret key. The construction
is SIV-style (the idea of RFC 5297) with HMAC-SHA256 as the pseudo-random function, from the
standard library:

    tag        = HMAC(mac key of the purpose, record)[:16]
    ciphertext = record XOR HMAC(encryption key of the purpose, tag || counter) ...
    token      = base64url(tag || ciphertext)

Both keys are derived from SECRET_KEY and the purpose, so a token made for one purpose is
meaningless for another. Tokens are read with SECRET_KEY and then each of SECRET_KEY_FALLBACKS
(key rotation, docs/security.md). Made by the same key, the same record gives the same token.

Lifetimes (docs/security.md, "Public surface"):
- confirmation links: NURTURE_CONFIRM_MAX_AGE_DAYS;
- preference and view-online links (and any purpose added later): NURTURE_LINK_MAX_AGE_DAYS, and
  revoked when the subscriber's link_version changes ("send me new links") or the row is erased;
- unsubscribe links: no expiry (one-click unsubscribe must keep working long after the email);
  they die with the subscriber row (erase).

Old-format tokens (Django signing, `[id]` readable) are refused like any forgery.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.utils.crypto import constant_time_compare, salted_hmac


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
    fresh link to the address on file; the page itself must show nothing about them."""

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

# Purposes whose links stay valid only while the subscriber's link_version is unchanged.
NOT_REVOCABLE = {CONFIRM, UNSUBSCRIBE}

_FORMAT = 1
_HEADER = struct.Struct(">BQII")  # format, subscriber id, link version, issued (unix seconds)
_TAG_BYTES = 16
_MAX_TOKEN_CHARS = 400


def max_age(purpose: str) -> timedelta | None:
    if purpose in (CONFIRM, CARER_CONFIRM):
        return timedelta(days=settings.NURTURE_CONFIRM_MAX_AGE_DAYS)
    if purpose == UNSUBSCRIBE:
        return None
    return timedelta(days=settings.NURTURE_LINK_MAX_AGE_DAYS)


@lru_cache(maxsize=64)
def _keys(purpose: str, secret: str) -> tuple[bytes, bytes]:
    mac_key = salted_hmac(f"nurture.tokens.{purpose}.mac", b"", secret=secret, algorithm="sha256").digest()
    enc_key = salted_hmac(f"nurture.tokens.{purpose}.enc", b"", secret=secret, algorithm="sha256").digest()
    return mac_key, enc_key


def _keystream(enc_key: bytes, tag: bytes, length: int) -> bytes:
    blocks = []
    for counter in range((length + 31) // 32):
        blocks.append(hmac.new(enc_key, tag + counter.to_bytes(4, "big"), hashlib.sha256).digest())
    return b"".join(blocks)[:length]


def _xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream))


def _seal(record: bytes, *, purpose: str, secret: str) -> str:
    mac_key, enc_key = _keys(purpose, secret)
    tag = hmac.new(mac_key, record, hashlib.sha256).digest()[:_TAG_BYTES]
    sealed = tag + _xor(record, _keystream(enc_key, tag, len(record)))
    return base64.urlsafe_b64encode(sealed).decode("ascii").rstrip("=")


def _open(token: str, *, purpose: str) -> bytes:
    if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN_CHARS:
        raise TokenInvalid()
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (ValueError, TypeError) as exc:
        raise TokenInvalid() from exc
    if len(sealed) < _TAG_BYTES + _HEADER.size:
        raise TokenInvalid()
    tag, ciphertext = sealed[:_TAG_BYTES], sealed[_TAG_BYTES:]
    for secret in [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]:
        mac_key, enc_key = _keys(purpose, secret)
        record = _xor(ciphertext, _keystream(enc_key, tag, len(ciphertext)))
        expected = hmac.new(mac_key, record, hashlib.sha256).digest()[:_TAG_BYTES]
        if constant_time_compare(expected, tag):
            return record
    raise TokenInvalid()


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
    record = _open(token, purpose=purpose)
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


def read_expired_token(*, purpose: str, token: str) -> int | None:
    """The subscriber id of a genuine token that has expired (for "email me a fresh link"), else None."""
    try:
        read_token(purpose=purpose, token=token)
    except TokenExpired as error:
        return error.subscriber_id
    except TokenError:
        return None
    return None


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"
