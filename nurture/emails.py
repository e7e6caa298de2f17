"""Building the email messages: layout, plain-text twin, headers, and the render cache.

A nurture email is the same for everyone who gets a step, except for the greeting and the
personal links. So the heavy work (template render + CSS inlining) is done once per step,
language and article versions and kept in an in-process LRU cache with placeholders where
the personal parts go; each subscriber's copy is then a few string replacements. The
personal values are escaped exactly as the CSS inliner's serialiser would have written them,
so a cached copy is byte-identical to a full render (tests/test_emails_render.py proves it).

Health data: nothing here puts the subscriber's stage in a header, a tag, metadata or a
subject. Step subjects are validated against diagnosis words (nurture.validators).
"""
from __future__ import annotations

import re
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import css_inline
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from content.models import Article
from nurture import selectors, tokens
from nurture.email_text import html_to_text
from nurture.models import Delivery, Step, Subscriber

# The guide every article is drawn from (a title, so it is not translated).
GUIDE_TITLE = "Seeking a Second Opinion"

# Colours of the layout. Every text/background pair used together has contrast >= 4.5:1
# (tests/test_emails_layout.py computes it), in light and in dark mode.
PALETTE = {
    "page": "#eef1f5",  # behind the card
    "card": "#ffffff",
    "ink": "#1d2433",
    "muted": "#4a5568",
    "accent": "#0b5cad",
    "note": "#eef4fb",
    "rule": "#d5dbe3",
    "dark_page": "#0d1117",
    "dark_card": "#161b22",
    "dark_ink": "#e6edf3",
    "dark_muted": "#b1bac4",
    "dark_accent": "#8cc4ff",
    "dark_note": "#1c2533",
    "dark_rule": "#30363d",
}
# (text, background) pairs that appear in the layout.
CONTRAST_PAIRS = [
    ("ink", "card"), ("muted", "card"), ("accent", "card"), ("ink", "note"), ("accent", "note"),
    ("muted", "page"), ("accent", "page"),
    ("dark_ink", "dark_card"), ("dark_muted", "dark_card"), ("dark_accent", "dark_card"),
    ("dark_ink", "dark_note"), ("dark_accent", "dark_note"), ("dark_muted", "dark_page"), ("dark_accent", "dark_page"),
]

# Placeholders for the per-subscriber parts. Plain ASCII words: they survive HTML parsing,
# CSS inlining and attribute serialisation unchanged.
PH_GREETING = "NURTUREPH0greeting0"
PH_PREFERENCES_URL = "NURTUREPH0preferences0"
PH_UNSUBSCRIBE_URL = "NURTUREPH0unsubscribe0"
PH_VIEW_ONLINE_URL = "NURTUREPH0viewonline0"
_PLACEHOLDER = re.compile("|".join((PH_GREETING, PH_PREFERENCES_URL, PH_UNSUBSCRIBE_URL, PH_VIEW_ONLINE_URL)))
# The "view in browser" part is optional (no link on the web copy, in previews or test sends):
# the templates wrap it in these markers, which are removed with it or without it.
VIEW_ONLINE_START = "<!--nurture:view-online-->"
VIEW_ONLINE_END = "<!--/nurture:view-online-->"
_VIEW_ONLINE_BLOCK = re.compile(re.escape(VIEW_ONLINE_START) + ".*?" + re.escape(VIEW_ONLINE_END), re.S)

# Links in previews and test sends must not act on a real subscriber: they use this token,
# which every view rejects with the plain bad-link page.
SAMPLE_TOKEN = "sample-link"

_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
_TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates" / "email"


# --- the per-subscriber parts -------------------------------------------------------------------

@dataclass(frozen=True)
class Personal:
    """What differs between two subscribers' copies of the same step."""

    greeting: str
    preferences_url: str
    unsubscribe_url: str
    view_online_url: str = ""  # empty: no "view in browser" link


def clean_name(first_name: str) -> str:
    """One line of printable text: control characters would not survive HTML parsing unchanged."""
    name = "".join(ch for ch in (first_name or "") if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return " ".join(name.split())


def greeting_for(first_name: str, *, language: str) -> str:
    name = clean_name(first_name)
    with translation.override(language):
        return gettext("Hello %(name)s,") % {"name": name} if name else gettext("Hello,")


def _link(route: str, *, purpose: str, subscriber_id: int | None, extra: str = "") -> str:
    if subscriber_id is None:
        return tokens.absolute_url(reverse(route, args=[SAMPLE_TOKEN]))
    token = tokens.make_token(purpose=purpose, subscriber_id=subscriber_id, extra=extra)
    return tokens.absolute_url(reverse(route, args=[token]))


def link(route: str, *, purpose: str, subscriber_id: int) -> str:
    return _link(route, purpose=purpose, subscriber_id=subscriber_id)


def view_online_url(*, subscriber_id: int, delivery_id: int) -> str:
    return _link("nurture:view_online", purpose=tokens.VIEW_ONLINE, subscriber_id=subscriber_id, extra=str(delivery_id))


def personal_for(subscriber: Subscriber, *, language: str, delivery_id: int | None = None, sample_links: bool = False) -> Personal:
    """sample_links: previews and test sends get links that do nothing (see SAMPLE_TOKEN)."""
    subscriber_id = None if sample_links else subscriber.pk
    online = ""
    if delivery_id is not None and subscriber_id is not None:
        online = view_online_url(subscriber_id=subscriber_id, delivery_id=delivery_id)
    return Personal(
        greeting=greeting_for(subscriber.first_name, language=language),
        preferences_url=_link("nurture:preferences", purpose=tokens.PREFERENCES, subscriber_id=subscriber_id),
        unsubscribe_url=_link("nurture:unsubscribe", purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber_id),
        view_online_url=online,
    )


# Escaping as css-inline's HTML serialiser writes text and attribute values, so a substituted
# value is byte-identical to the same value rendered by Django and re-serialised by the inliner.
def _escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")


def _keep_or_drop_view_online(content: str, keep: bool) -> str:
    if keep:
        return content.replace(VIEW_ONLINE_START, "").replace(VIEW_ONLINE_END, "")
    return _VIEW_ONLINE_BLOCK.sub("", content)


# --- rendering ----------------------------------------------------------------------------------

def organisation() -> dict:
    website = settings.NURTURE_ORG_WEBSITE
    return {
        "name": settings.NURTURE_ORG_NAME,
        "address": settings.NURTURE_ORG_ADDRESS,
        "helpline": settings.NURTURE_ORG_HELPLINE,
        "website": website,
        "website_label": re.sub(r"^https?://", "", website).rstrip("/"),
    }


def inline_css(html: str) -> str:
    return _INLINER.inline(html)


_HEADING_TAG = re.compile(r"<(/?)h([1-5])\b", re.I)


_LINK_WITHOUT_HREF = re.compile(r"<a\b(?![^>]*\bhref=)[^>]*>(.*?)</a>", re.S | re.I)


def _demote_headings(body_html: str) -> str:
    """Inside an article (its title is the h2), the article's own headings start at h3."""
    return _HEADING_TAG.sub(lambda m: f"<{m.group(1)}h{min(max(int(m.group(2)) + 1, 3), 6)}", body_html)


def _email_body_html(body_html: str) -> str:
    # A link the sanitiser left without a target (e.g. to another article) reads as plain text.
    return _demote_headings(_LINK_WITHOUT_HREF.sub(r"\1", body_html))


@dataclass
class ArticleView:
    title: str
    title_underline: str
    body_html: str
    body_text: str
    sections: list[str] = field(default_factory=list)


def _article_view(article: Article) -> ArticleView:
    sections = [s.strip() for s in (article.source_section or "").split(";") if s.strip()]
    return ArticleView(
        title=article.title,
        title_underline="=" * len(article.title),
        body_html=_email_body_html(article.body_html),
        body_text=html_to_text(article.body_html),
        sections=sections,
    )


def _step_context(*, step: Step, articles: list[Article], language: str, personal: Personal) -> dict:
    return {
        "language": language,
        "subject": step.subject,
        "articles": [_article_view(a) for a in articles],
        "guide_title": GUIDE_TITLE,
        "org": organisation(),
        "palette": PALETTE,
        "greeting": personal.greeting,
        "preferences_url": personal.preferences_url,
        "unsubscribe_url": personal.unsubscribe_url,
        "view_online_url": personal.view_online_url,
        "view_online_start": VIEW_ONLINE_START,
        "view_online_end": VIEW_ONLINE_END,
    }


def _tidy_text(text: str) -> str:
    """Template tags leave runs of blank lines; a plain-text reader wants at most one."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def _render_step(*, step: Step, articles: list[Article], language: str, personal: Personal) -> tuple[str, str]:
    """(html, text) for these values: template render + CSS inlining. The optional view-online
    part keeps its markers; callers keep or drop it."""
    context = _step_context(step=step, articles=articles, language=language, personal=personal)
    with translation.override(language):
        html = inline_css(render_to_string("email/step.html", context))
        text = _tidy_text(render_to_string("email/step.txt", context))
    return html, text


def render_step_full(*, step: Step, articles: list[Article], language: str, personal: Personal) -> tuple[str, str]:
    """The reference render: what the cache must reproduce byte for byte."""
    html, text = _render_step(step=step, articles=articles, language=language, personal=personal)
    keep = bool(personal.view_online_url)
    return _keep_or_drop_view_online(html, keep), _keep_or_drop_view_online(text, keep)


_PLACEHOLDERS = Personal(
    greeting=PH_GREETING,
    preferences_url=PH_PREFERENCES_URL,
    unsubscribe_url=PH_UNSUBSCRIBE_URL,
    view_online_url=PH_VIEW_ONLINE_URL,
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
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in _TEMPLATE_DIR.glob("*") if p.is_file()))


def cache_key(*, step: Step, articles: list[Article], language: str) -> tuple:
    return (
        step.pk,
        language,
        step.subject,
        tuple((a.pk, a.version, a.updated_at) for a in articles),
        tuple(organisation().values()),
        settings.SITE_URL,
        _template_stamp(),
    )


def personal_values(personal: Personal) -> dict[str, tuple[str, str]]:
    """placeholder -> (value escaped for the HTML part, value for the text part). The single
    source for personalise() and for an ESP's merge data (merge_values), so the two stay byte-equal."""
    return {
        PH_GREETING: (_escape_text(personal.greeting), personal.greeting),
        PH_PREFERENCES_URL: (_escape_attribute(personal.preferences_url), personal.preferences_url),
        PH_UNSUBSCRIBE_URL: (_escape_attribute(personal.unsubscribe_url), personal.unsubscribe_url),
        PH_VIEW_ONLINE_URL: (_escape_attribute(personal.view_online_url), personal.view_online_url),
    }


def personalise(cached: tuple[str, str], personal: Personal) -> tuple[str, str]:
    html, text = cached
    keep = bool(personal.view_online_url)
    html = _keep_or_drop_view_online(html, keep)
    text = _keep_or_drop_view_online(text, keep)
    values = personal_values(personal)
    html_values = {placeholder: pair[0] for placeholder, pair in values.items()}
    text_values = {placeholder: pair[1] for placeholder, pair in values.items()}
    # One pass each: a substituted value (a name that happens to look like a placeholder) is never rescanned.
    html = _PLACEHOLDER.sub(lambda m: html_values[m.group(0)], html)
    text = _PLACEHOLDER.sub(lambda m: text_values[m.group(0)], text)
    return html, text


def render_step(*, step: Step, articles: list[Article], language: str, personal: Personal) -> tuple[str, str]:
    """(html, text) for one subscriber: the cached step render, personalised."""
    return personalise(step_render_with_placeholders(step=step, articles=articles, language=language), personal)


def step_language(step: Step) -> str:
    """The layout speaks the language of the step's content (its series)."""
    return step.series.language


# --- messages -----------------------------------------------------------------------------------

def _domain() -> str:
    return settings.NURTURE_LIST_ID.split(".", 1)[-1] if "." in settings.NURTURE_LIST_ID else "nurture.invalid"


def list_headers(*, unsubscribe_url: str) -> dict[str, str]:
    """RFC 2369 / RFC 8058 headers. They carry only the signed link: no stage, no name."""
    targets = [f"<{unsubscribe_url}>"]
    if settings.NURTURE_UNSUBSCRIBE_MAILTO:
        targets.append(f"<mailto:{settings.NURTURE_UNSUBSCRIBE_MAILTO}>")
    return {
        "List-Unsubscribe": ", ".join(targets),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "List-Id": f"<{settings.NURTURE_LIST_ID}>",
    }


def _message(*, subject: str, text: str, html: str, to: str, message_id: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to])
    message.attach_alternative(html, "text/html")
    message.extra_headers["Message-ID"] = message_id
    # No anymail tags or metadata: they would reach the provider, and nothing there may hint at
    # the stage. Webhooks find the delivery by the provider's message id instead.
    return message


def build_step_email(
    *, step: Step, subscriber: Subscriber, to: str | None = None, delivery_id: int | None = None,
    message_id: str = "", sample_links: bool = False, subject_prefix: str = "", articles: list[Article] | None = None,
) -> EmailMultiAlternatives:
    """One step's email for one subscriber (saved or a sample): the one builder for sends,
    previews and test sends. A batch sender may pass `articles` (selectors.step_published_articles,
    read once per step in the batch) to save one query per email."""
    language = step_language(step)
    if articles is None:
        articles = selectors.step_published_articles(step_id=step.pk)
    personal = personal_for(subscriber, language=language, delivery_id=delivery_id, sample_links=sample_links)
    html, text = render_step(step=step, articles=articles, language=language, personal=personal)
    message = _message(
        subject=f"{subject_prefix}{step.subject}", text=text, html=html, to=to or subscriber.email,
        message_id=message_id or make_msgid(domain=_domain()),
    )
    message.extra_headers.update(list_headers(unsubscribe_url=personal.unsubscribe_url))
    # Which version of each article this copy carries, for the sender to record on the delivery.
    message.nurture_article_versions = {str(a.pk): a.version for a in articles}
    return message


def build_delivery_email(
    delivery: Delivery, *, sample_links: bool = False, articles: list[Article] | None = None
) -> EmailMultiAlternatives:
    """The sender's entry point. Load the delivery with select_related("subscriber", "step__series").

    It carries the delivery's own articles (selectors.delivery_articles: never one the subscriber
    already had); the sender passes the list it already read."""
    if articles is None:
        articles = selectors.delivery_articles(delivery=delivery)
    return build_step_email(
        step=delivery.step,
        subscriber=delivery.subscriber,
        delivery_id=delivery.pk,
        message_id=delivery.message_id,
        sample_links=sample_links,
        articles=articles,
    )


def delivery_web_html(delivery: Delivery, *, sample_links: bool = False) -> str:
    """The "view in browser" page: the same email as build_delivery_email (the same articles from
    selectors.delivery_articles, the same render), without the link to itself. For a sent delivery
    that is the article versions it went out with, even after staff edited them.
    sample_links: the staff preview, whose links must not act on the real subscriber."""
    step = delivery.step
    language = step_language(step)
    articles = selectors.delivery_articles(delivery=delivery)
    personal = personal_for(delivery.subscriber, language=language, sample_links=sample_links)
    html, _text = render_step(step=step, articles=articles, language=language, personal=personal)
    return html


def build_confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    """Short and stage-free: it says what they asked for, not what we know about them."""
    language = subscriber.language
    context = {
        "language": language,
        "greeting": greeting_for(subscriber.first_name, language=language),
        "confirm_url": link("nurture:confirm", purpose=tokens.CONFIRM, subscriber_id=subscriber.pk),
        "max_age_days": settings.NURTURE_CONFIRM_MAX_AGE_DAYS,
        "org": organisation(),
        "palette": PALETTE,
    }
    with translation.override(language):
        subject = render_to_string("email/confirmation_subject.txt", context).strip()
        context["subject"] = subject
        text = _tidy_text(render_to_string("email/confirmation.txt", context))
        html = inline_css(render_to_string("email/confirmation.html", context))
    return _message(subject=subject, text=text, html=html, to=subscriber.email, message_id=make_msgid(domain=_domain()))


# --- batch sends: the ESP fills in the personal parts ---------------------------------------------
# An ESP's batch endpoint takes one body with merge fields and a table of values per recipient.
# The cached render already has placeholders where the personal parts go; here they become merge
# fields, and each recipient's values are escaped exactly as personalise() would write them, so
# the ESP's substitution yields the bytes of a single send (tests/test_sending_batch.py proves it).
# HTML and text need different escaping, so each part has an html_ and a text_ field.
MERGE_FIELD_NAMES = {
    PH_GREETING: "greeting",
    PH_PREFERENCES_URL: "preferences_url",
    PH_UNSUBSCRIBE_URL: "unsubscribe_url",
    PH_VIEW_ONLINE_URL: "view_online_url",
}


def step_render_with_placeholders(*, step: Step, articles: list[Article], language: str) -> tuple[str, str]:
    """The cached (html, text) of a step, placeholders in, view-online markers still in."""
    key = cache_key(step=step, articles=articles, language=language)
    return render_cache.get_or_render(
        key, lambda: _render_step(step=step, articles=articles, language=language, personal=_PLACEHOLDERS)
    )


def merge_bodies(cached: tuple[str, str], *, field_format: str) -> tuple[str, str]:
    """(html, text) with merge fields where the personal parts go. Every delivery has its
    "view in browser" link, so that part is kept. field_format: the ESP's syntax, e.g.
    "%recipient.{}%" (Mailgun)."""
    html, text = (_keep_or_drop_view_online(part, True) for part in cached)
    html = _PLACEHOLDER.sub(lambda m: field_format.format("html_" + MERGE_FIELD_NAMES[m.group(0)]), html)
    text = _PLACEHOLDER.sub(lambda m: field_format.format("text_" + MERGE_FIELD_NAMES[m.group(0)]), text)
    return html, text


def merge_values(personal: Personal) -> dict[str, str]:
    """One recipient's merge data for merge_bodies(): the values personalise() would put in."""
    if not personal.view_online_url:
        raise ValueError("a batch send needs each recipient's view-online link")
    values = {}
    for placeholder, (html_value, text_value) in personal_values(personal).items():
        name = MERGE_FIELD_NAMES[placeholder]
        values[f"html_{name}"], values[f"text_{name}"] = html_value, text_value
    return values


class NotBatchable(ValueError):
    """This content or these values would be misread by the ESP's merge syntax: send one by one."""


def build_batch_email(
    deliveries: list[Delivery], *, articles: list[Article], field_format: str, marker: str = "", check_values: bool = True
) -> EmailMultiAlternatives:
    """One step's email for several deliveries (same step, language and articles; each address
    once), for an ESP batch call through anymail: one body with merge fields, and per recipient
    the merge data (greeting, links), headers (Message-ID, List-Unsubscribe) and metadata (the
    delivery id only: nothing about the stage). Load the deliveries with
    select_related("subscriber", "step__series")."""
    step = deliveries[0].step
    language = step_language(step)
    cached = step_render_with_placeholders(step=step, articles=articles, language=language)
    # What makes the ESP see a merge field (given, or the format's literal start): content, subject
    # or a value holding it would be misread, so such a call goes one by one.
    field_prefix = marker or field_format.format("\0").split("\0", 1)[0]
    if any(field_prefix in part for part in (cached[0], cached[1], step.subject)):
        raise NotBatchable("the content itself contains the ESP's merge syntax")
    html, text = merge_bodies(cached, field_format=field_format)
    addresses = [delivery.subscriber.email for delivery in deliveries]
    message = EmailMultiAlternatives(subject=step.subject, body=text, to=addresses)
    message.attach_alternative(html, "text/html")
    shared = list_headers(unsubscribe_url="")
    message.extra_headers.update({name: shared[name] for name in ("List-Unsubscribe-Post", "List-Id")})
    message.merge_data, message.merge_headers, message.merge_metadata = {}, {}, {}
    for delivery, address in zip(deliveries, addresses):
        personal = personal_for(delivery.subscriber, language=language, delivery_id=delivery.pk)
        values = merge_values(personal)
        if check_values and any(field_prefix in value for value in values.values()):
            raise NotBatchable(f"delivery {delivery.pk}: a personal value contains the ESP's merge syntax")
        message.merge_data[address] = values
        message.merge_headers[address] = {
            "Message-ID": delivery.message_id or make_msgid(domain=_domain()),
            "List-Unsubscribe": list_headers(unsubscribe_url=personal.unsubscribe_url)["List-Unsubscribe"],
        }
        message.merge_metadata[address] = {"delivery": str(delivery.pk)}
    message.nurture_article_versions = {str(a.pk): a.version for a in articles}
    return message
