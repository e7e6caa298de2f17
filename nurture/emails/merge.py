"""Batch sends: the ESP fills in the personal parts from merge fields.

An ESP's batch endpoint takes one body with merge fields and a table of values per recipient. The
cached render already has placeholders where the personal parts go; here they become merge fields, and
each recipient's values are escaped exactly as personalise() would write them, so the ESP's substitution
yields the bytes of a single send (tests prove it). HTML and text need different escaping, so each part
has an html_ and a text_ field."""
from __future__ import annotations

from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid

from content.models import Article
from nurture.emails.cache import personal_values, step_language, step_render_with_placeholders
from nurture.emails.layout import (
    PH_FEEDBACK_URL, PH_GREETING, PH_IMPACT_URL, PH_PAUSE_URL, PH_PREFERENCES_URL, PH_UNSUBSCRIBE_URL,
    PH_VIEW_ONLINE_URL, PLACEHOLDER_PATTERN,
    keep_or_drop_view_online,
)
from nurture.emails.links import Personal, personal_for
from nurture.emails.messages import domain, list_headers
from nurture.models import Delivery


MERGE_FIELD_NAMES = {
    PH_GREETING: "greeting",
    PH_PREFERENCES_URL: "preferences_url",
    PH_UNSUBSCRIBE_URL: "unsubscribe_url",
    PH_VIEW_ONLINE_URL: "view_online_url",
    PH_PAUSE_URL: "pause_url",
    PH_FEEDBACK_URL: "feedback_url",
    PH_IMPACT_URL: "impact_url",
}


def merge_bodies(cached: tuple[str, str], *, field_format: str) -> tuple[str, str]:
    """(html, text) with merge fields where the personal parts go. Every delivery has its
    "view in browser" link, so that part is kept. field_format: the ESP's syntax, e.g.
    "%recipient.{}%" (Mailgun)."""
    html, text = (keep_or_drop_view_online(part, True) for part in cached)
    html = PLACEHOLDER_PATTERN.sub(lambda m: field_format.format("html_" + MERGE_FIELD_NAMES[m.group(0)]), html)
    text = PLACEHOLDER_PATTERN.sub(lambda m: field_format.format("text_" + MERGE_FIELD_NAMES[m.group(0)]), text)
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
    deliveries: list[Delivery], *, articles: list[Article], field_format: str, marker: str = "",
    check_values: bool = True, recipient_lists: list[list[str]] | None = None,
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
    if any(d.carer_handoff_id is not None for d in deliveries) or (
        recipient_lists is not None
        and any(addresses != [d.subscriber.email] for d, addresses in zip(deliveries, recipient_lists))
    ):
        # A carer's copy is built for the carer (its own body and links): one by one.
        raise NotBatchable("a carer's copy is built on its own")
    if any(d.subscriber.plain_text or d.subscriber.larger_text for d in deliveries):
        # The shared body is the standard layout; their own format is built one by one.
        raise NotBatchable("a subscriber chose plain text or larger text")
    html, text = merge_bodies(cached, field_format=field_format)
    addresses = [delivery.subscriber.email for delivery in deliveries]
    message = EmailMultiAlternatives(subject=step.subject, body=text, to=addresses)
    message.attach_alternative(html, "text/html")
    shared = list_headers(unsubscribe_url="")
    message.extra_headers.update({name: shared[name] for name in ("List-Unsubscribe-Post", "List-Id")})
    message.merge_data, message.merge_headers, message.merge_metadata = {}, {}, {}
    for delivery, address in zip(deliveries, addresses):
        personal = personal_for(
            delivery.subscriber, language=language, delivery_id=delivery.pk, welcome_back=delivery.welcome_back
        )
        values = merge_values(personal)
        if check_values and any(field_prefix in value for value in values.values()):
            raise NotBatchable(f"delivery {delivery.pk}: a personal value contains the ESP's merge syntax")
        message.merge_data[address] = values
        message.merge_headers[address] = {
            "Message-ID": delivery.message_id or make_msgid(domain=domain()),
            "List-Unsubscribe": list_headers(unsubscribe_url=personal.unsubscribe_url)["List-Unsubscribe"],
        }
        message.merge_metadata[address] = {"delivery": str(delivery.pk)}
    message.nurture_article_versions = {str(a.pk): a.version for a in articles}
    return message
