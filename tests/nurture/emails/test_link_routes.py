"""Links are built from each route's text around the token, made once: the same URL reverse() gives."""
from __future__ import annotations

import pytest
from django.urls import reverse

from nurture import tokens
from nurture.emails import links

ROUTES = ["nurture:preferences", "nurture:unsubscribe", "nurture:pause", "nurture:view_online", "nurture:confirm"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_link_is_what_reverse_gives(route):
    made = [tokens.make_token(purpose=tokens.UNSUBSCRIBE, subscriber_id=n, extra="x" * n) for n in range(1, 40)]
    for token in [*made, "ab-_cd", links.SAMPLE_TOKEN]:
        assert links._route_url(route, token) == reverse(route, args=[token])


def test_the_route_text_follows_the_script_prefix():
    from django.urls import set_script_prefix

    token = "abc"
    set_script_prefix("/sub/")
    try:
        assert links._route_url("nurture:pause", token) == reverse("nurture:pause", args=[token]) == "/sub/pause/abc/"
    finally:
        set_script_prefix("/")
    assert links._route_url("nurture:pause", token) == "/pause/abc/"
