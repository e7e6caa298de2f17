"""Tokens decode strictly: one spelling per token. Base64 decoders forgive padding, "+"
for "-", "/" for "_" and the unused bits of the last character; a link altered so must not open the
page (it would let one link exist in many forms, past any list of links seen or revoked)."""
from __future__ import annotations

import base64

import pytest

from nurture import tokens
from tests.helpers.scheduler import active_subscriber, series

pytestmark = pytest.mark.django_db


def _spellings(token: str) -> list[str]:
    """Other spellings the lenient decoder reads as the same bytes."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    variants = [token + "==", token + "=", token.replace("-", "+").replace("_", "/"), " " + token, token + "\n"]
    # The last character carries unused bits when the length is not a multiple of 3: flip one.
    if len(raw) % 3:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        last = alphabet.index(token[-1])
        variants.append(token[:-1] + alphabet[last ^ 1])
    return [v for v in variants if v != token and base64.urlsafe_b64decode(v.strip() + "=" * (-len(v.strip()) % 4)) == raw]


def _token_with_both_signs(purpose, subscriber):
    for extra in range(500):  # a token holding "-" or "_", so the swap is a real other spelling
        token = tokens.make_token(purpose=purpose, subscriber_id=subscriber.pk, extra=str(extra))
        if "-" in token or "_" in token:
            return token
    raise AssertionError("no token with - or _ in 500 tries")


@pytest.mark.parametrize("purpose", [tokens.PREFERENCES, tokens.PAUSE, tokens.UNSUBSCRIBE, tokens.CONFIRM, tokens.CARER_STOP])
def test_only_the_canonical_spelling_of_a_token_reads(purpose):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    token = _token_with_both_signs(purpose, subscriber)
    assert tokens.read_token(purpose=purpose, token=token)[0] == subscriber.pk
    others = _spellings(token)
    assert len(others) >= 3  # the decoder really reads them as the same token
    for other in others:
        with pytest.raises(tokens.TokenInvalid):
            tokens.read_token(purpose=purpose, token=other)


def test_an_altered_spelling_does_not_open_the_preference_page(client):
    subscriber = active_subscriber("ana@example.org", series("in_treatment", [(0, ["a1"])]))
    token = tokens.make_token(purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk)
    assert client.get(f"/preferences/{token}/").status_code == 200
    response = client.get(f"/preferences/{token}==/")
    assert response.status_code != 200 and b"ana@example.org" not in response.content
