"""The render cache: each step rendered once per language and article versions, with placeholders,
then personalised per subscriber: the render split at its placeholders once, each copy joined with
that subscriber's values. A copy's JSON string (what a provider's API is sent) is joined the same
way, from parts escaped once per render (nurture/emails/encoded.py splices it into the payload)."""
from __future__ import annotations

import re
import threading
from collections import OrderedDict
from json.encoder import encode_basestring_ascii
from typing import NamedTuple

from django.conf import settings

from content.models import Article
from nurture.emails.layout import (
    PH_FEEDBACK_URL, PH_GREETING, PH_IMPACT_URL, PH_PAUSE_URL, PH_PREFERENCES_URL, PH_UNSUBSCRIBE_URL,
    PH_VIEW_ONLINE_URL, PLACEHOLDER_PATTERN, TEMPLATE_DIR,
    escape_attribute, escape_text, keep_or_drop_view_online, organisation_key, render_step_template, asks_impact,
)
from nurture.emails.links import Personal, url_setting
from nurture.models import Step


_PLACEHOLDERS = Personal(
    greeting=PH_GREETING,
    preferences_url=PH_PREFERENCES_URL,
    unsubscribe_url=PH_UNSUBSCRIBE_URL,
    view_online_url=PH_VIEW_ONLINE_URL,
    pause_url=PH_PAUSE_URL,
    feedback_url=PH_FEEDBACK_URL,
    impact_url=PH_IMPACT_URL,
)
_CARER_PLACEHOLDERS = Personal(
    greeting=PH_GREETING, preferences_url=PH_PREFERENCES_URL, unsubscribe_url=PH_UNSUBSCRIBE_URL,
    view_online_url=PH_VIEW_ONLINE_URL, pause_url=PH_PAUSE_URL, for_carer=True,
)


class RenderCache:
    """A small thread-safe LRU of step renders with placeholders, keyed by what changes them."""

    def __init__(self, maxsize: int = 256):
        self.maxsize = maxsize
        self._items: OrderedDict[tuple, tuple[str, str]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: tuple, render) -> tuple[str, str]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        value = render()  # outside the lock: two threads may render the same step once each, harmlessly
        with self._lock:
            self.misses += 1
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)


render_cache = RenderCache()


def _template_stamp() -> tuple:
    """In DEBUG the email templates can change under a running process: key on their mtimes."""
    if not settings.DEBUG:
        return ()
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in TEMPLATE_DIR.glob("*") if p.is_file()))


def cache_key(*, step: Step, articles: list[Article], language: str, for_carer: bool = False,
              where: tuple | None = None) -> tuple:
    """What a step's render depends on. `where`: links.url_setting(), if the caller read it already
    (the layout's links are reversed under it)."""
    return (
        step.pk,
        for_carer,
        language,
        step.subject,
        tuple((a.pk, a.version, a.updated_at, a.approved_at) for a in articles),
        settings.DEBUG,  # the demo's "Draft: not yet reviewed" line
        asks_impact(step),
        organisation_key(),
        *(where or url_setting()),
        _template_stamp(),
    )


def personal_values(personal: Personal) -> dict[str, tuple[str, str]]:
    """placeholder -> (value escaped for the HTML part, value for the text part). The single
    source for personalise() and for an ESP's merge data (merge_values), so the two stay byte-equal."""
    return {
        PH_GREETING: (escape_text(personal.greeting), personal.greeting),
        PH_PREFERENCES_URL: (escape_attribute(personal.preferences_url), personal.preferences_url),
        PH_UNSUBSCRIBE_URL: (escape_attribute(personal.unsubscribe_url), personal.unsubscribe_url),
        PH_VIEW_ONLINE_URL: (escape_attribute(personal.view_online_url), personal.view_online_url),
        PH_PAUSE_URL: (escape_attribute(personal.pause_url), personal.pause_url),
        PH_FEEDBACK_URL: (escape_attribute(personal.feedback_url), personal.feedback_url),
        PH_IMPACT_URL: (escape_attribute(personal.impact_url), personal.impact_url),
    }


# A cached render split at its placeholders, per (content, view-online kept): made once per render,
# not scanned again for each of the thousands of copies a sender personalises from it. Kept with
# it, the same parts as JSON writes them (json.dumps' escaping, ensure_ascii, works character by
# character, so a copy's JSON string is its escaped parts and escaped values joined).
_SPLIT_AT_PLACEHOLDERS = re.compile(f"({PLACEHOLDER_PATTERN.pattern})")
_SPLIT_KEPT = 512
_split_renders: dict[tuple[str, bool], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def json_escaped(text: str) -> str:
    """`text` as json.dumps (ensure_ascii, as anymail calls it) writes it, without the quotes."""
    return encode_basestring_ascii(text)[1:-1]


def _split(content: str, keep: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`content` with its view-online part kept or dropped, as text, placeholder, text, ...,
    placeholder, text (the placeholders at the odd places); and the same with its text JSON-escaped."""
    key = (content, keep)
    split = _split_renders.get(key)
    if split is None:
        parts = tuple(_SPLIT_AT_PLACEHOLDERS.split(keep_or_drop_view_online(content, keep)))
        escaped = tuple(part if index % 2 else json_escaped(part) for index, part in enumerate(parts))
        if len(_split_renders) >= _SPLIT_KEPT:
            _split_renders.clear()  # renders of older article versions: split again if ever asked
        split = _split_renders[key] = (parts, escaped)
    return split


def _filled(parts: tuple[str, ...], values: dict[str, tuple[str, str]], which: int) -> str:
    # Each placeholder is replaced once, in one pass: a substituted value (a name that happens to
    # look like a placeholder) is never read again.
    out = list(parts)
    for index in range(1, len(out), 2):
        out[index] = values[out[index]][which]
    return "".join(out)


class Copy(NamedTuple):
    """One subscriber's copy of a render, and each part as a JSON string (quotes included)."""
    html: str
    text: str
    html_json: str
    text_json: str


def personalise(cached: tuple[str, str], personal: Personal) -> tuple[str, str]:
    html, text = cached
    keep = bool(personal.view_online_url)
    values = personal_values(personal)
    return _filled(_split(html, keep)[0], values, 0), _filled(_split(text, keep)[0], values, 1)


def personalise_with_json(cached: tuple[str, str], personal: Personal) -> Copy:
    """personalise(), and each part's JSON string joined from the render's escaped parts."""
    html, text = cached
    keep = bool(personal.view_online_url)
    values = personal_values(personal)
    escaped = {placeholder: (json_escaped(for_html), json_escaped(for_text))
               for placeholder, (for_html, for_text) in values.items()}
    (html_parts, html_escaped), (text_parts, text_escaped) = _split(html, keep), _split(text, keep)
    return Copy(_filled(html_parts, values, 0), _filled(text_parts, values, 1),
                f'"{_filled(html_escaped, escaped, 0)}"', f'"{_filled(text_escaped, escaped, 1)}"')


def step_render_with_placeholders(
    *, step: Step, articles: list[Article], language: str, for_carer: bool = False, where: tuple | None = None
) -> tuple[str, str]:
    """The cached (html, text) of a step, placeholders in, view-online markers still in.
    for_carer: the carer's copy (its own footer: the carer's stop link only)."""
    key = cache_key(step=step, articles=articles, language=language, for_carer=for_carer, where=where)
    personal = _CARER_PLACEHOLDERS if for_carer else _PLACEHOLDERS
    return render_cache.get_or_render(
        key, lambda: render_step_template(step=step, articles=articles, language=language, personal=personal)
    )


def render_step(*, step: Step, articles: list[Article], language: str, personal: Personal,
                where: tuple | None = None) -> tuple[str, str]:
    """(html, text) for one subscriber: the cached step render, personalised."""
    cached = step_render_with_placeholders(step=step, articles=articles, language=language,
                                           for_carer=personal.for_carer, where=where)
    return personalise(cached, personal)


def render_step_with_json(*, step: Step, articles: list[Article], language: str, personal: Personal,
                          where: tuple | None = None) -> Copy:
    """render_step(), with each part's JSON string too (for a provider's API)."""
    cached = step_render_with_placeholders(step=step, articles=articles, language=language,
                                           for_carer=personal.for_carer, where=where)
    return personalise_with_json(cached, personal)


def step_language(step: Step) -> str:
    """The layout speaks the language of the step's content (its series)."""
    return step.series.language


def step_body_key(*, step: Step, articles: list[Article]) -> tuple:
    """What makes two copies of a step's email one body before personalisation (the render
    cache's key, in the step's language): a batch sender groups by it."""
    return cache_key(step=step, articles=articles, language=step_language(step))
