"""Email messages: headers (List-Unsubscribe, List-Id, Message-ID) and the builders for a step,
a delivery, its web copy and the confirmation email."""
from __future__ import annotations

import dataclasses

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from django.utils.translation import gettext_lazy as _

from content.models import Article, Stage
from nurture import providers, tokens
from nurture.emails.cache import render_step, render_step_with_json, step_language
from nurture.emails.encoded import JSON_ATTR
from nurture.emails.layout import PALETTE, asks_impact, inline_css, larger_text, organisation, tidy_text
from nurture.selectors.deliveries import delivery_articles
from nurture.selectors.series import step_published_articles
from nurture.emails.links import (
    Personal, carer_personal_for, clean_name, feedback_urls, greeting_for, link, personal_for, requester_label,
    url_setting,
)
from nurture.models import CarerHandoff, Delivery, SignupRequest, Step, Subscriber

# Why a preference-link email goes out (templates/email/links.*).
LINKS_ALREADY_SUBSCRIBED = "already"  # someone signed up with the address of an active subscriber
LINKS_NEW = "new"  # "email me a new link" / "send me new links"


def domain() -> str:
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


def _message(*, subject: str, text: str, html: str | None, to: str | list[str],
             message_id: str) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(subject=subject, body=text, to=[to] if isinstance(to, str) else list(to))
    if html is not None:  # None: plain text only, as the person chose
        message.attach_alternative(html, "text/html")
    message.extra_headers["Message-ID"] = message_id
    if settings.NURTURE_REPLY_ADDRESS:  # replies reach the inbound route, not a no-reply inbox
        message.reply_to = [settings.NURTURE_REPLY_ADDRESS]
    # No anymail tags or metadata: they would reach the provider, and nothing there may hint at
    # the stage. Webhooks find the delivery by the provider's message id instead.
    return message


def build_step_email(
    *, step: Step, subscriber: Subscriber, to: str | list[str] | None = None, delivery_id: int | None = None,
    message_id: str = "", sample_links: bool = False, subject_prefix: str = "", articles: list[Article] | None = None,
    welcome_back: bool = False, where: tuple | None = None,
) -> EmailMultiAlternatives:
    """One step's email for one subscriber (saved or a sample): the one builder for sends,
    previews and test sends. A batch sender may pass `articles` (step_published_articles,
    read once per step in the batch) to save one query per email, and `where`
    (links.url_setting(), read once per batch)."""
    language = step_language(step)
    if articles is None:
        articles = step_published_articles(step_id=step.pk)
    where = where or url_setting()
    personal = personal_for(
        subscriber, language=language, delivery_id=delivery_id, sample_links=sample_links, welcome_back=welcome_back,
        where=where, impact=asks_impact(step),
    )
    copy = render_step_with_json(step=step, articles=articles, language=language, personal=personal, where=where)
    html, text = copy.html, copy.text
    json_strings = [(text, copy.text_json)]  # for the provider call (nurture/emails/encoded.py)
    if subscriber.larger_text:
        html = larger_text(html)  # its JSON is made when it is sent
    elif not subscriber.plain_text:
        json_strings.append((html, copy.html_json))
    message = _message(
        subject=f"{subject_prefix}{step.subject}", text=text, html=None if subscriber.plain_text else html,
        to=to or subscriber.email,
        message_id=message_id or make_msgid(domain=domain()),
    )
    setattr(message, JSON_ATTR, tuple(json_strings))
    message.extra_headers.update(list_headers(unsubscribe_url=personal.unsubscribe_url))
    # Which version of each article this copy carries, for the sender to record on the delivery.
    message.nurture_article_versions = {str(a.pk): a.version for a in articles}
    return message


def build_delivery_email(
    delivery: Delivery, *, sample_links: bool = False, articles: list[Article] | None = None,
    to: list[str] | None = None, where: tuple | None = None,
) -> EmailMultiAlternatives:
    """The sender's entry point. Load the delivery with select_related("subscriber", "step__series",
    "carer_handoff").

    It carries the delivery's own articles (delivery_articles: never one the subscriber
    already had); the sender passes the list it already read. One address per message, always:
    the subscriber's own copy goes to the subscriber, a carer's copy (delivery.carer_handoff) to the
    carer, built for them (nurture/sending/recheck.py reads which). `to` is accepted for the sender's
    sake and must be that one address."""
    address = delivery.to_address
    if to is not None and list(to) != [address]:
        raise ValueError(f"delivery {delivery.pk} goes to its own address only")
    if articles is None:
        articles = delivery_articles(delivery=delivery)
    if delivery.for_carer:
        message = _carer_copy(delivery, articles=articles, sample_links=sample_links)
    else:
        message = build_step_email(
            step=delivery.step,
            subscriber=delivery.subscriber,
            to=None if sample_links else address,
            welcome_back=delivery.welcome_back,
            delivery_id=delivery.pk,
            message_id=delivery.message_id,
            sample_links=sample_links,
            articles=articles,
            where=where,
        )
    # The delivery id and nothing else (as a batch call's merge_metadata): the provider's webhook
    # events carry it back, which settles a delivery whose answer we never heard (unknown outcome).
    message.metadata = {"delivery": str(delivery.pk)}
    return message


def _carer_copy(delivery: Delivery, *, articles: list[Article], sample_links: bool) -> EmailMultiAlternatives:
    """A carer's copy: greets the carer, names the subscriber by first name only, carries the
    carer's own stop link (also its one-click List-Unsubscribe) and a web version of this copy."""
    step = delivery.step
    language = step_language(step)
    personal = carer_personal_for(
        delivery.subscriber, handoff_id=delivery.carer_handoff_id, language=language, delivery_id=delivery.pk,
        sample_links=sample_links,
    )
    html, text = render_step(step=step, articles=articles, language=language, personal=personal)
    message = _message(
        subject=step.subject, text=text, html=html, to=delivery.to_address,
        message_id=delivery.message_id or make_msgid(domain=domain()),
    )
    message.extra_headers.update(list_headers(unsubscribe_url=personal.unsubscribe_url))
    message.nurture_article_versions = {str(a.pk): a.version for a in articles}
    return message


def delivery_web_html(delivery: Delivery, *, sample_links: bool = False, manage_url: str = "") -> str:
    """The "view in browser" page: the same email as build_delivery_email (the same articles from
    delivery_articles, the same render), without the link to itself. For a sent delivery
    that is the article versions it went out with, even after staff edited them.
    sample_links: the staff preview, whose links must not act on the real subscriber.
    manage_url: the public web copy's "change your choices" link, which must not be a preference
    link (anyone the page's URL reaches would hold one); the "email me a new link" page."""
    step = delivery.step
    language = step_language(step)
    articles = delivery_articles(delivery=delivery)
    if delivery.for_carer:  # the carer's copy: the carer's own stop link, nothing of the subscriber's
        personal = carer_personal_for(
            delivery.subscriber, handoff_id=delivery.carer_handoff_id, language=language, sample_links=sample_links
        )
        return render_step(step=step, articles=articles, language=language, personal=personal)[0]
    personal = personal_for(
        delivery.subscriber, language=language, sample_links=sample_links, welcome_back=delivery.welcome_back
    )
    if manage_url and not sample_links:
        # The pause link, like the preference link, must not travel with a shareable page.
        personal = Personal(
            greeting=personal.greeting, preferences_url=manage_url, unsubscribe_url=personal.unsubscribe_url,
            pause_url=manage_url
        )
    # "Was this helpful?" answers for this delivery (sample links in the staff preview).
    personal = dataclasses.replace(personal, **feedback_urls(
        subscriber_id=None if sample_links else delivery.subscriber_id, delivery_id=delivery.pk,
        link_version=delivery.subscriber.link_version,
    ))
    html, _text = render_step(step=step, articles=articles, language=language, personal=personal)
    return html


def _service_email(*, template: str, to: str, language: str, first_name: str, context: dict) -> EmailMultiAlternatives:
    """A short service email (confirmation, preference link) from templates/email/<template>
    .html, .txt and _subject.txt, in `language`, greeting `first_name`."""
    context = {
        **context, "language": language, "greeting": greeting_for(first_name, language=language),
        "org": organisation(), "palette": PALETTE,
    }
    with translation.override(language):
        subject = render_to_string(f"email/{template}_subject.txt", context).strip()
        context["subject"] = subject
        text = tidy_text(render_to_string(f"email/{template}.txt", context))
        html = inline_css(render_to_string(f"email/{template}.html", context))
    message = _message(subject=subject, text=text, html=html, to=to, message_id=make_msgid(domain=domain()))
    providers.message_stream_set(message, stream=providers.TRANSACTIONAL)  # someone is waiting for it
    return message


def build_confirmation_email(subscriber: Subscriber, *,
                             signup_request: SignupRequest | None = None) -> EmailMultiAlternatives:
    """Short and stage-free: it says what they asked for, not what we know about them. With a
    sign-up request, in that sign-up's language and name, and its link names the request, whose
    choices apply only when it is confirmed."""
    extra = str(signup_request.pk) if signup_request else ""
    return _service_email(
        template="confirmation", to=subscriber.email,
        language=signup_request.language if signup_request else subscriber.language,
        first_name=signup_request.first_name if signup_request else subscriber.first_name,
        context={
            "confirm_url": link("nurture:confirm", purpose=tokens.CONFIRM, subscriber_id=subscriber.pk, extra=extra),
            "max_age_days": settings.NURTURE_CONFIRM_MAX_AGE_DAYS,
        },
    )


def build_links_email(subscriber: Subscriber, *, reason: str) -> EmailMultiAlternatives:
    """A new preference link, to the address we hold, in their language: for someone already
    subscribed who signed up again (reason LINKS_ALREADY_SUBSCRIBED), or who asked for a new link
    (LINKS_NEW). Stage-free, like the confirmation email."""
    return _service_email(
        template="links", to=subscriber.email, language=subscriber.language, first_name=subscriber.first_name,
        context={
            "reason": reason,
            "preferences_url": link(
                "nurture:preferences", purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk,
                link_version=subscriber.link_version,
            ),
            "max_age_days": settings.NURTURE_LINK_MAX_AGE_DAYS,
        },
    )


def build_carer_confirmation_email(handoff) -> EmailMultiAlternatives:
    """To the carer: who asked (first name only: never the subscriber's address) and what they
    would receive ("information about getting a second opinion"), never the stage or a date. In
    the subscriber's language (we know no other)."""
    subscriber = handoff.subscriber
    token = tokens.make_token(purpose=tokens.CARER_CONFIRM, subscriber_id=subscriber.pk, extra=str(handoff.pk))
    return _service_email(
        template="carer_confirmation", to=handoff.carer_email, language=subscriber.language, first_name="",
        context={
            "requester": requester_label(subscriber),
            "mode": handoff.mode,
            "confirm_url": tokens.absolute_url(reverse("nurture:carer_confirm", args=[token])),
            "max_age_days": settings.NURTURE_CONFIRM_MAX_AGE_DAYS,
        },
    )


def build_carer_notice_email(handoff: CarerHandoff, *, event: str) -> EmailMultiAlternatives:
    """To the subscriber, in their own inbox: what happened to their carer hand-off (event:
    services.carers.NOTICE_*). The request notice carries a link that cancels it and, for "instead
    of me", the subscriber's own confirmation link; nothing else opens their record."""
    subscriber = handoff.subscriber
    context = {"event": event, "handoff": handoff, "carer_email": handoff.carer_email, "mode": handoff.mode,
               "stopped_by": handoff.stopped_by, "max_age_days": settings.NURTURE_CONFIRM_MAX_AGE_DAYS}
    if handoff.status != CarerHandoff.Status.STOPPED:
        version = subscriber.link_version
        context["cancel_url"] = link("nurture:carer_cancel", purpose=tokens.CARER_CANCEL, subscriber_id=subscriber.pk,
                                     extra=str(handoff.pk), link_version=version)
        if handoff.mode == CarerHandoff.Mode.INSTEAD and handoff.subscriber_confirmed_at is None:
            context["approve_url"] = link("nurture:carer_approve", purpose=tokens.CARER_APPROVE,
                                          subscriber_id=subscriber.pk,
                                          extra=str(handoff.pk), link_version=version)
    return _service_email(
        template="carer_notice", to=subscriber.email, language=subscriber.language,
        first_name=clean_name(subscriber.first_name), context=context,
    )


def build_bereavement_support_email(bereavement) -> EmailMultiAlternatives:
    """To the carer who asked for it when telling us the person died: the organisation's
    bereavement-support details (NURTURE_BEREAVEMENT_SUPPORT), once, in the person's language.
    Nothing about the person's stage or their emails."""
    return _service_email(
        template="bereavement_support", to=bereavement.support_email_to, language=bereavement.subscriber.language,
        first_name="", context={"support": settings.NURTURE_BEREAVEMENT_SUPPORT.strip()},
    )


def build_reply_unsubscribed_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    """The one email after someone replied "stop": it worked, and how to come back. Stage-free."""
    return _service_email(
        template="reply_unsubscribed", to=subscriber.email, language=subscriber.language,
        first_name=subscriber.first_name, context={"signup_url": tokens.absolute_url(reverse("nurture:signup"))},
    )


def build_checkin_email(subscriber: Subscriber, *, answers: list[str]) -> EmailMultiAlternatives:
    """"Has anything changed?": one button per answer, each its own opaque link (the answer sealed in
    the token, never readable in the URL). The subject names no diagnosis."""
    with translation.override(subscriber.language):
        labels = {**{value: str(label) for value, label in Stage.choices}, "same": str(_("Nothing has changed"))}
    buttons = [
        (labels[answer], link("nurture:checkin", purpose=tokens.CHECKIN, subscriber_id=subscriber.pk, extra=answer,
                              link_version=subscriber.link_version))
        for answer in answers
    ]
    return _service_email(
        template="checkin", to=subscriber.email, language=subscriber.language, first_name=subscriber.first_name,
        context={"buttons": buttons},
    )
