"""The per-subscriber parts of an email: greeting and signed links (preferences, unsubscribe, view online)."""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import translation
from django.utils.translation import gettext, gettext_noop, trans_real

from nurture import tokens
from nurture.models import Subscriber


# Links in previews and test sends must not act on a real subscriber: they use this token,
# which every view rejects with the plain bad-link page.
SAMPLE_TOKEN = "sample-link"


@dataclass(frozen=True)
class Personal:
    """What differs between two subscribers' copies of the same step."""

    greeting: str
    preferences_url: str
    unsubscribe_url: str
    view_online_url: str = ""  # empty: no "view in browser" link
    pause_url: str = ""  # "Pause these emails" (/pause/<token>/)
    # A carer's copy: the layout's carer footer (its one link, unsubscribe_url, is the carer's own
    # stop link); preferences_url and pause_url are not shown.
    for_carer: bool = False
    feedback_url: str = ""  # "Was this helpful?" (/feedback/<token>/, bound to the delivery)
    impact_url: str = ""  # the impact question at the end of a series (the same, another question)


def clean_name(first_name: str) -> str:
    """One line of printable text: control characters would not survive HTML parsing unchanged."""
    name = "".join(ch for ch in (first_name or "") if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return " ".join(name.split())


def requester_label(subscriber: Subscriber) -> str:
    """Who asked, as a carer is told: their first name, if given; never their address or stage."""
    name = clean_name(subscriber.first_name)
    if name:
        return name
    with translation.override(subscriber.language):
        return gettext("someone who receives our emails")


def carer_greeting(subscriber: Subscriber, *, language: str) -> str:
    """The opening line of a carer's copy: it greets the carer and says on whose behalf it comes
    (the subscriber's first name only)."""
    name = clean_name(subscriber.first_name)
    with translation.override(language):
        if name:
            return gettext("Hello. You receive this email because %(name)s asked us to send it to you.") % {
                "name": name}
        return gettext("Hello. You receive this email because someone you help asked us to send it to you.")


def gettext_in(language: str, message: str) -> str:
    """gettext(message) as it reads under translation.override(language), without making
    `language` the thread's active one: a sender greets thousands of people in a row, and each
    switch writes and restores a context-local value."""
    if not settings.USE_I18N or not language:
        with translation.override(language):
            return gettext(message)
    return trans_real.translation(language).gettext(message)


# (welcome back, with a name) -> the opening line; marked with gettext_noop for makemessages.
_GREETINGS = {
    (False, True): gettext_noop("Hello %(name)s,"),
    (False, False): gettext_noop("Hello,"),
    (True, True): gettext_noop("Hello %(name)s, welcome back. Here is where we were."),
    (True, False): gettext_noop("Hello, welcome back. Here is where we were."),
}


def greeting_for(first_name: str, *, language: str, welcome_back: bool = False) -> str:
    """The opening line; the first email after a pause also says "welcome back, here is where we were"."""
    name = clean_name(first_name)
    line = gettext_in(language, _GREETINGS[bool(welcome_back), bool(name)])
    return line % {"name": name} if name else line


_TOKEN_MARK = "TOKEN"
_route_parts: dict[tuple, tuple[str, str]] = {}


def url_setting() -> tuple:
    """The URL configuration and script prefix in force (what reverse() reads; each is a
    context-local read): a builder of many links or emails reads them once and passes them on
    as `where`."""
    return get_urlconf(), get_script_prefix()


def _route_url(route: str, token: str, where: tuple | None = None) -> str:
    """reverse(route, args=[token]), made once per route and URL configuration (`where`, else the
    current one): a sender builds six links per email, and tokens (base64url) are never quoted, so
    the route's text around the token is all reverse() would add."""
    key = (route, *(where or url_setting()))
    if key not in _route_parts:
        before, _, after = reverse(route, args=[_TOKEN_MARK]).partition(_TOKEN_MARK)
        _route_parts[key] = (before, after)
    before, after = _route_parts[key]
    return f"{before}{token}{after}"


def _link(route: str, *, purpose: str, subscriber_id: int | None, extra: str = "", link_version: int | None = None,
          where: tuple | None = None) -> str:
    if subscriber_id is None:
        return tokens.absolute_url(_route_url(route, SAMPLE_TOKEN, where))
    token = tokens.make_token(purpose=purpose, subscriber_id=subscriber_id, extra=extra, link_version=link_version)
    return tokens.absolute_url(_route_url(route, token, where))


def link(route: str, *, purpose: str, subscriber_id: int, extra: str = "", link_version: int | None = None) -> str:
    """An opaque link for `purpose` (nurture/tokens.py). Pass the subscriber's link_version when
    you hold the row: it saves a query per link."""
    return _link(route, purpose=purpose, subscriber_id=subscriber_id, extra=extra, link_version=link_version)


def view_online_url(*, subscriber_id: int, delivery_id: int, link_version: int | None = None,
                    where: tuple | None = None) -> str:
    return _link(
        "nurture:view_online", purpose=tokens.VIEW_ONLINE, subscriber_id=subscriber_id, extra=str(delivery_id),
        link_version=link_version, where=where,
    )


def carer_stop_url(*, subscriber: Subscriber, handoff_id: int) -> str:
    """The carer's own "stop": it ends this hand-off and touches nothing else of the subscriber's."""
    return link("nurture:carer_stop", purpose=tokens.CARER_STOP, subscriber_id=subscriber.pk, extra=str(handoff_id),
                link_version=subscriber.link_version)


def carer_personal_for(
    subscriber: Subscriber, *, handoff_id: int, language: str, delivery_id: int | None = None,
    sample_links: bool = False,
) -> Personal:
    """The personal parts of a carer's copy: carer-scoped links only. The stop link is the
    carer's own; the "view in browser" link opens this copy (tokens.CARER_VIEW), never the
    subscriber's. No preference or pause link: nothing here opens the subscriber's record."""
    if sample_links:
        stop = tokens.absolute_url(_route_url("nurture:carer_stop", SAMPLE_TOKEN))
        online = ""
    else:
        stop = carer_stop_url(subscriber=subscriber, handoff_id=handoff_id)
        online = "" if delivery_id is None else link(
            "nurture:carer_view", purpose=tokens.CARER_VIEW, subscriber_id=subscriber.pk, extra=str(delivery_id),
            link_version=subscriber.link_version,
        )
    return Personal(
        greeting=carer_greeting(subscriber, language=language), preferences_url=stop, unsubscribe_url=stop,
        view_online_url=online, pause_url=stop, for_carer=True,
    )


def feedback_urls(*, subscriber_id: int | None, delivery_id: int | None, link_version: int | None = None,
                  where: tuple | None = None, impact: bool = True) -> dict[str, str]:
    """The delivery's "Was this helpful?" and impact links; without a delivery (previews, test
    sends) the sample link that does nothing. impact=False: no impact link (the email does not
    ask it: layout.asks_impact), so no token is made for it."""
    if delivery_id is None:
        subscriber_id = None
    questions = (("feedback_url", "helpful"), ("impact_url", "impact")) if impact else (("feedback_url", "helpful"),)
    return {
        name: _link(
            "nurture:feedback", purpose=tokens.FEEDBACK, subscriber_id=subscriber_id, extra=f"{delivery_id}:{question}",
            link_version=link_version, where=where,
        )
        for name, question in questions
    }


def personal_for(
    subscriber: Subscriber, *, language: str, delivery_id: int | None = None, sample_links: bool = False,
    welcome_back: bool = False, where: tuple | None = None, impact: bool = True,
) -> Personal:
    """sample_links: previews and test sends get links that do nothing (see SAMPLE_TOKEN).
    welcome_back: the first email after a pause (Delivery.welcome_back).
    where: url_setting(), if the caller read it already.
    impact: False where the email does not ask the impact question (no link made for it)."""
    subscriber_id = None if sample_links else subscriber.pk
    where, version = where or url_setting(), subscriber.link_version
    online = ""
    if delivery_id is not None and subscriber_id is not None:
        online = view_online_url(subscriber_id=subscriber_id, delivery_id=delivery_id, link_version=version,
                                 where=where)
    return Personal(
        greeting=greeting_for(subscriber.first_name, language=language, welcome_back=welcome_back),
        preferences_url=_link(
            "nurture:preferences", purpose=tokens.PREFERENCES, subscriber_id=subscriber_id, link_version=version,
            where=where
        ),
        unsubscribe_url=_link("nurture:unsubscribe", purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber_id,
                              where=where),
        view_online_url=online,
        pause_url=_link("nurture:pause", purpose=tokens.PAUSE, subscriber_id=subscriber_id, link_version=version,
                        where=where),
        **feedback_urls(subscriber_id=subscriber_id, delivery_id=delivery_id, link_version=version, where=where,
                        impact=impact),
    )
