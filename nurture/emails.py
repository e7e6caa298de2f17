"""Building the email messages. (Rendering is deepened in the email-layout work.)"""
from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from nurture import tokens
from nurture.models import Delivery, Subscriber


def _domain() -> str:
    return settings.NURTURE_LIST_ID.split(".", 1)[-1] if "." in settings.NURTURE_LIST_ID else "nurture.invalid"


def link(route: str, *, purpose: str, subscriber_id: int) -> str:
    token = tokens.make_token(purpose=purpose, subscriber_id=subscriber_id)
    return tokens.absolute_url(reverse(route, args=[token]))


def build_confirmation_email(subscriber: Subscriber) -> EmailMultiAlternatives:
    with translation.override(subscriber.language):
        context = {
            "subscriber": subscriber,
            "confirm_url": link("nurture:confirm", purpose=tokens.CONFIRM, subscriber_id=subscriber.pk),
            "max_age_days": settings.NURTURE_CONFIRM_MAX_AGE_DAYS,
        }
        subject = render_to_string("email/confirmation_subject.txt", context).strip()
        text = render_to_string("email/confirmation.txt", context)
        html = render_to_string("email/confirmation.html", context)
    message = EmailMultiAlternatives(subject=subject, body=text, to=[subscriber.email])
    message.attach_alternative(html, "text/html")
    message.extra_headers["Message-ID"] = make_msgid(domain=_domain())
    return message


def build_delivery_email(delivery: Delivery) -> EmailMultiAlternatives:
    subscriber = delivery.subscriber
    step = delivery.step
    articles = [a for a in step.articles.all() if a.is_published]
    unsubscribe_url = link("nurture:unsubscribe", purpose=tokens.UNSUBSCRIBE, subscriber_id=subscriber.pk)
    with translation.override(subscriber.language):
        context = {
            "subscriber": subscriber,
            "step": step,
            "articles": articles,
            "unsubscribe_url": unsubscribe_url,
            "preferences_url": link("nurture:preferences", purpose=tokens.PREFERENCES, subscriber_id=subscriber.pk),
        }
        text = render_to_string("email/step.txt", context)
        html = render_to_string("email/step.html", context)
    message = EmailMultiAlternatives(subject=step.subject, body=text, to=[subscriber.email])
    message.attach_alternative(html, "text/html")
    message.extra_headers.update(
        {
            "Message-ID": delivery.message_id or make_msgid(domain=_domain()),
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"<{settings.NURTURE_LIST_ID}>",
        }
    )
    return message
