"""The email layout: palette, organisation details, templates, CSS inlining, one full render of a step.

A nurture email is the same for everyone who gets a step, except for the greeting and the personal
links (nurture.emails.links). The heavy work here (template render + CSS inlining) runs once per step,
language and article versions (nurture.emails.cache); the personal parts are placeholders, escaped
exactly as the CSS inliner's serialiser would write them, so a cached copy is byte-identical to a full
render (tests prove it).

Health data: nothing here puts the subscriber's stage in a header, a tag, metadata or a subject.
Step subjects are validated against diagnosis words (nurture.validators).
"""
from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import css_inline
from django.conf import settings
from django.db.models import Max
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from content import sources
from content.guide import article_body_with_guide_links
from content.models import Article
from nurture.emails.links import Personal
from nurture.emails.text import html_to_text
from nurture.models import Step


# The guide every article is drawn from; its credit in each language lives in content.sources.
GUIDE_TITLE = sources.guide_credit(language="en").title


# Colours of the layout. Every text/background pair used together has contrast >= 4.5:1
# (tests/nurture/emails/test_layout.py computes it), in light and in dark mode.
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
PH_PAUSE_URL = "NURTUREPH0pause0"
PH_FEEDBACK_URL = "NURTUREPH0feedback0"
PH_IMPACT_URL = "NURTUREPH0impact0"


PLACEHOLDER_PATTERN = re.compile("|".join(
    (PH_GREETING, PH_PREFERENCES_URL, PH_UNSUBSCRIBE_URL, PH_VIEW_ONLINE_URL, PH_PAUSE_URL, PH_FEEDBACK_URL,
     PH_IMPACT_URL)
))


# The "view in browser" part is optional (no link on the web copy, in previews or test sends):
# the templates wrap it in these markers, which are removed with it or without it.
VIEW_ONLINE_START = "<!--nurture:view-online-->"


VIEW_ONLINE_END = "<!--/nurture:view-online-->"


_VIEW_ONLINE_BLOCK = re.compile(re.escape(VIEW_ONLINE_START) + ".*?" + re.escape(VIEW_ONLINE_END), re.S)


_INLINER = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)


TEMPLATE_DIR = Path(settings.BASE_DIR) / "templates" / "email"


# Escaping as css-inline's HTML serialiser writes text and attribute values, so a substituted
# value is byte-identical to the same value rendered by Django and re-serialised by the inliner.
def escape_text(value: str) -> str:
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    return value.replace("&", "&amp;").replace("\u00a0", "&nbsp;").replace('"', "&quot;")


def keep_or_drop_view_online(content: str, keep: bool) -> str:
    if keep:
        return content.replace(VIEW_ONLINE_START, "").replace(VIEW_ONLINE_END, "")
    return _VIEW_ONLINE_BLOCK.sub("", content)


_BODY_OPEN = re.compile(r"<body\b[^>]*>", re.I)


def as_web_page(html: str) -> str:
    """An email's web version is a page of its own, so its content goes in a <main> landmark. In a
    mail client the email sits inside the client's page, where role="article" (the template's
    wrapper) is the convention and a second main would be wrong."""
    opened = _BODY_OPEN.search(html)
    closing = html.rfind("</body>")
    if not opened or closing < opened.end():
        return html
    return f"{html[:opened.end()]}<main>{html[opened.end():closing]}</main>{html[closing:]}"


def organisation_key() -> tuple:
    """What organisation() is made of, without building it (no URL reversed): the render cache's
    key takes this for every email, with the URL configuration and script prefix its links are
    reversed under."""
    return (settings.NURTURE_ORG_NAME, settings.NURTURE_ORG_ADDRESS, settings.NURTURE_ORG_HELPLINE,
            settings.NURTURE_ORG_WEBSITE, settings.SITE_URL)


def organisation() -> dict:
    website = settings.NURTURE_ORG_WEBSITE
    return {
        "name": settings.NURTURE_ORG_NAME,
        "address": settings.NURTURE_ORG_ADDRESS,
        "helpline": settings.NURTURE_ORG_HELPLINE,
        "website": website,
        "website_label": re.sub(r"^https?://", "", website).rstrip("/"),
        "privacy_url": f"{settings.SITE_URL}{reverse('nurture:privacy')}",
    }


def inline_css(html: str) -> str:
    return _INLINER.inline(html)


_HEADING_TAG = re.compile(r"<(/?)h([1-5])\b", re.I)


_LINK_WITHOUT_HREF = re.compile(r"<a\b(?![^>]*\bhref=)[^>]*>(.*?)</a>", re.S | re.I)


def _demote_headings(body_html: str, *, top: int = 3) -> str:
    """Inside an article (its title is the h2), the article's own headings start at h3; in an article
    whose title is the email's own heading (the h1), they start at h2."""
    return _HEADING_TAG.sub(lambda m: f"<{m.group(1)}h{min(max(int(m.group(2)) + top - 2, top), 6)}", body_html)


def _email_body_html(body_html: str, *, top: int = 3) -> str:
    # A link the sanitiser left without a target (e.g. to another article) reads as plain text.
    return _demote_headings(_LINK_WITHOUT_HREF.sub(r"\1", body_html), top=top)


@dataclass
class ArticleView:
    title: str
    title_underline: str
    body_html: str
    headed: bool  # False when the title is the email's subject: one heading, said once
    body_text: str
    sections: list[str] = field(default_factory=list)
    credit: str = ""  # the guide, its author and revision date, and the sections used, in the reader's language
    # Provenance: who approved this text (name, role), when, and the next review; or unreviewed
    # (only ever sent in the DEBUG demo, which says so in one line).
    reviewed: bool = False
    reviewer_name: str = ""
    reviewer_role: str = ""
    reviewed_on: dt.date | None = None
    next_review_on: dt.date | None = None


def _article_view(article: Article, *, language: str, subject: str = "") -> ArticleView:
    """References to other articles link to their public guide pages. That they stay inside the reader's
    series is checked where series and articles meet (load_content; tests/content): rendering asks nothing."""
    body_html = article_body_with_guide_links(article=article)
    sections = sources.section_titles(source_section=article.source_section, language=language)
    approved_at = getattr(article, "approved_at", None)
    headed = article.title.strip() != subject.strip()
    return ArticleView(
        title=article.title,
        title_underline="=" * len(article.title),
        body_html=_email_body_html(body_html, top=3 if headed else 2),
        headed=headed,
        body_text=html_to_text(body_html),
        sections=sections,
        credit=sources.guide_credit(language=language).based_on_line(sections),
        reviewed=article.is_approved,
        reviewer_name=article.approved_by_name,
        reviewer_role=article.approved_by_role,
        reviewed_on=approved_at.date() if approved_at else None,
        next_review_on=article.next_review_on,
    )


_LAST_POSITION_SECONDS = 30.0
_last_positions: dict[int, tuple[float, int | None]] = {}


def _last_position(series_id: int) -> int | None:
    """The series' last step position, read at most every 30 s per process (asked for every email)."""
    now = time.monotonic()
    cached = _last_positions.get(series_id)
    if cached is None or cached[0] < now:
        top = Step.objects.filter(series_id=series_id).aggregate(top=Max("position"))["top"]
        cached = _last_positions[series_id] = (now + _LAST_POSITION_SECONDS, top)
    return cached[1]


def asks_impact(step: Step) -> bool:
    """The impact question closes the last step of a series (NURTURE_IMPACT_QUESTION)."""
    if not settings.NURTURE_IMPACT_QUESTION or step.pk is None or step.series_id is None:
        return False
    last = _last_position(step.series_id)
    return last is not None and step.position >= last


def _step_context(*, step: Step, articles: list[Article], language: str, personal: Personal) -> dict:
    ask_impact = asks_impact(step)
    return {
        "language": language,
        "subject": step.subject,
        # A step of one article titled as the email: one heading (with more, each article keeps its own).
        "articles": [_article_view(a, language=language, subject=step.subject if len(articles) == 1 else "")
                     for a in articles],
        "guide_title": sources.guide_credit(language=language).title,
        "guide_copyright": sources.guide_credit(language=language).copyright,
        "feedback_url": personal.feedback_url,
        "impact_url": personal.impact_url if ask_impact else "",
        "org": organisation(),
        "palette": PALETTE,
        "greeting": personal.greeting,
        "preferences_url": personal.preferences_url,
        "unsubscribe_url": personal.unsubscribe_url,
        "pause_url": personal.pause_url,
        "view_online_url": personal.view_online_url,
        "for_carer": personal.for_carer,
        "view_online_start": VIEW_ONLINE_START,
        "view_online_end": VIEW_ONLINE_END,
    }


def tidy_text(text: str) -> str:
    """Template tags leave runs of blank lines; a plain-text reader wants at most one."""
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def render_step_template(*, step: Step, articles: list[Article], language: str, personal: Personal) -> tuple[str, str]:
    """(html, text) for these values: template render + CSS inlining. The optional view-online
    part keeps its markers; callers keep or drop it."""
    context = _step_context(step=step, articles=articles, language=language, personal=personal)
    with translation.override(language):
        html = inline_css(render_to_string("email/step.html", context))
        text = tidy_text(render_to_string("email/step.txt", context))
    return html, text


def render_step_full(*, step: Step, articles: list[Article], language: str, personal: Personal) -> tuple[str, str]:
    """The reference render: what the cache must reproduce byte for byte."""
    html, text = render_step_template(step=step, articles=articles, language=language, personal=personal)
    keep = bool(personal.view_online_url)
    return keep_or_drop_view_online(html, keep), keep_or_drop_view_online(text, keep)


LARGER_TEXT_SCALE = 1.25
_FONT_SIZE = re.compile(r"font-size:\s*(\d+(?:\.\d+)?)px")
_LINE_HEIGHT = re.compile(r"line-height:\s*(\d(?:\.\d+)?)(?=[;\s\"'!])")


def larger_text(html: str) -> str:
    """The larger-text layout a person can choose (preference centre): every font size a quarter
    larger and a little more space between lines. Works on the inlined HTML, so every client sees it."""
    html = _FONT_SIZE.sub(lambda m: f"font-size: {round(float(m.group(1)) * LARGER_TEXT_SCALE)}px", html)
    return _LINE_HEIGHT.sub(lambda m: f"line-height: {min(2.0, float(m.group(1)) + 0.15):.2f}", html)
