"""Reads: everything held about one person, for "Download my data", the staff export and
`manage.py subscriber_export`. One function, so the three always hand over the same thing.

A fixed number of queries whatever the history's length. Values are JSON-ready (ISO 8601 times).
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

from django.utils.translation import gettext_lazy as _

from content.models import Article, ArticleVersion
from nurture.models import CarerHandoff, ConsentRecord, Delivery, ProviderEvent, Reply, Subscriber, known_time_zones

EXPORT_FORMAT = 1


def _iso(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return str(value)


def subscriber_export(*, subscriber_id: int) -> dict:
    """Profile, consent and event records, every delivery with the articles and versions sent,
    pauses, carer hand-offs and provider events. Raises Subscriber.DoesNotExist."""
    subscriber = Subscriber.objects.select_related("series").get(pk=subscriber_id)
    consents = list(ConsentRecord.objects.filter(subscriber_id=subscriber_id).order_by("given_at", "pk"))
    deliveries = list(
        Delivery.objects.filter(subscriber_id=subscriber_id).select_related("step__series").order_by("queued_at", "pk")
    )
    handoffs = list(CarerHandoff.objects.filter(subscriber_id=subscriber_id).order_by("requested_at", "pk"))
    replies = list(Reply.objects.filter(subscriber_id=subscriber_id).order_by("received_at", "pk"))
    events = list(ProviderEvent.objects.filter(delivery__subscriber_id=subscriber_id).order_by("timestamp", "pk"))
    recorded = {(article_id, version)
                for d in deliveries for article_id, version in d.recorded_article_versions().items()}
    article_ids = {a for a, _v in recorded}
    articles = Article.objects.in_bulk(article_ids)
    titles = {
        (v.article_id, v.version): v.title
        for v in ArticleVersion.objects.filter(article_id__in=article_ids, version__in={v for _a, v in recorded})
    }
    events_by_delivery: dict[int, list[dict]] = {}
    for event in events:
        events_by_delivery.setdefault(event.delivery_id, []).append({
            "provider": event.provider,
            "type": event.event_type,
            "reject_reason": event.reject_reason,
            "description": event.description,
            "timestamp": _iso(event.timestamp),
        })

    def delivery_articles(delivery: Delivery) -> list[dict]:
        rows = []
        for article_id, version in sorted(delivery.recorded_article_versions().items()):
            article = articles.get(article_id)
            rows.append({
                "slug": article.slug if article else None,
                "language": article.language if article else None,
                "title": titles.get((article_id, version)) or (article.title if article else None),
                "version": version,
            })
        return rows

    pauses = []
    for record in consents:
        if record.kind == ConsentRecord.Kind.PAUSE:
            pauses.append({"paused_at": _iso(record.given_at), "source": record.source, "resumed_at": None,
                           "resumed_by": None})
        elif record.kind == ConsentRecord.Kind.RESUME and pauses and pauses[-1]["resumed_at"] is None:
            pauses[-1]["resumed_at"], pauses[-1]["resumed_by"] = _iso(record.given_at), record.source
    if pauses and subscriber.status == Subscriber.Status.PAUSED:
        pauses[-1]["resumes_automatically_at"] = _iso(subscriber.paused_until)

    return {
        "format": EXPORT_FORMAT,
        "profile": {
            "email": subscriber.email,
            "first_name": subscriber.first_name,
            "stage": subscriber.stage,
            "stage_label": str(subscriber.get_stage_display()),
            "language": subscriber.language,
            "time_zone": subscriber.time_zone,
            "cadence": subscriber.cadence,
            "status": subscriber.status,
            "treatment_date": _iso(subscriber.treatment_date),
            "series": subscriber.series.name if subscriber.series else None,
            "next_step": subscriber.next_step_position + 1,
            "next_email_not_before": _iso(subscriber.next_send_at),
            "paused_until": _iso(subscriber.paused_until),
            "signed_up_at": _iso(subscriber.created_at),
            "confirmed_at": _iso(subscriber.confirmed_at),
            "unsubscribed_at": _iso(subscriber.unsubscribed_at),
            # Days and hours that suit them, and the email format.
            "quiet_days": subscriber.quiet_days,
            "time_of_day": subscriber.time_of_day,
            "plain_text": subscriber.plain_text,
            "larger_text": subscriber.larger_text,
            "last_checkin_at": _iso(subscriber.last_checkin_at),
        },
        "consent_records": [
            {
                "kind": record.kind,
                "source": record.source,
                "text": record.consent_text,
                "language": record.language,
                "given_at": _iso(record.given_at),
                "confirmed_at": _iso(record.confirmed_at),
            }
            for record in consents
        ],
        "deliveries": [
            {
                "series": delivery.step.series.name,
                "step": delivery.step.position + 1,
                "subject": delivery.step.subject,
                "status": delivery.status,
                "queued_at": _iso(delivery.queued_at),
                "sent_at": _iso(delivery.sent_at),
                "failed_at": _iso(delivery.failed_at),
                "welcome_back": delivery.welcome_back,
                "articles": delivery_articles(delivery),
                "provider_events": events_by_delivery.get(delivery.pk, []),
            }
            for delivery in deliveries
        ],
        "pauses": pauses,
        "carer_handoffs": [
            {
                "carer_email": handoff.carer_email,
                "mode": handoff.mode,
                "status": handoff.status,
                "requested_at": _iso(handoff.requested_at),
                "confirmed_at": _iso(handoff.confirmed_at),
                "stopped_at": _iso(handoff.stopped_at),
                "stopped_by": handoff.stopped_by,
            }
            for handoff in handoffs
        ],
        # What they wrote back to our emails, while we keep it (NURTURE_REPLY_RETENTION_DAYS).
        "replies": [
            {"received_at": _iso(r.received_at), "state": r.state, "subject": r.subject, "text": r.text,
             "handled_at": _iso(r.handled_at)}
            for r in replies
        ],
    }


# --- the same, for reading on the web page ("Read it as a web page") ------------------------------

_SOURCES = {
    "signup_page": _("the sign-up page"),
    "confirm_link": _("the confirmation link"),
    "preferences_page": _("your email choices page"),
    "pause_link": _("the pause link in an email"),
    "unsubscribe_link": _("the unsubscribe link in an email"),
    "carer_link": _("the link we sent to the person helping you"),
    "automatic": _("automatically, at the end of the pause"),
    "admin": _("our staff, at your request"),
}
_LABELS = {
    "status": dict(Subscriber.Status.choices),
    "cadence": dict(Subscriber.Cadence.choices),
    "kind": dict(ConsentRecord.Kind.choices),
    "mode": dict(CarerHandoff.Mode.choices),
    "handoff_status": dict(CarerHandoff.Status.choices),
    "delivery_status": dict(Delivery.Status.choices),
    "language": {"en": "English", "es": "Español"},
}


def _when(value: str | None, time_zone) -> dt.datetime | dt.date | None:
    """An ISO value of the export as a date or a time in the reader's own zone (the template
    writes it in their language's way: "7 December 2026, 03:02")."""
    if not value:
        return None
    if len(value) == 10:
        return dt.date.fromisoformat(value)
    # Naive in their zone, so the template's date filter writes it as it is (not back in UTC).
    return dt.datetime.fromisoformat(value).astimezone(time_zone).replace(tzinfo=None)


def _label(kind: str, value):
    return _LABELS[kind].get(value, value)


def export_for_reading(data: dict, *, time_zone: str) -> dict:
    """subscriber_export's dict with words instead of codes and dates instead of ISO strings, for
    the readable page; the JSON download keeps the codes (they are what a program reads)."""
    zone = zoneinfo.ZoneInfo(time_zone) if time_zone in known_time_zones() else dt.timezone.utc
    profile = data["profile"]
    return {
        "profile": {
            **profile,
            "language": _label("language", profile["language"]),
            "cadence": _label("cadence", profile["cadence"]),
            "status": _label("status", profile["status"]),
            **{key: _when(profile[key], zone)
               for key in ("treatment_date", "paused_until", "signed_up_at", "confirmed_at")},
        },
        "consent_records": [
            {**r, "kind": _label("kind", r["kind"]), "source": _SOURCES.get(r["source"], r["source"]),
             "language": _label("language", r["language"]), "given_at": _when(r["given_at"], zone)}
            for r in data["consent_records"]
        ],
        "pauses": [
            {"paused_at": _when(p["paused_at"], zone),
             "ended_at": _when(p["resumed_at"] or p.get("resumes_automatically_at"), zone),
             "ends_by_itself": not p["resumed_at"] and bool(p.get("resumes_automatically_at"))}
            for p in data["pauses"]
        ],
        "carer_handoffs": [
            {**h, "mode": _label("mode", h["mode"]), "status": _label("handoff_status", h["status"]),
             **{key: _when(h[key], zone) for key in ("requested_at", "confirmed_at", "stopped_at")}}
            for h in data["carer_handoffs"]
        ],
        "deliveries": [
            {**d, "status": _label("delivery_status", d["status"]), "when": _when(d["sent_at"] or d["queued_at"], zone),
             "provider_events": [{**e, "timestamp": _when(e["timestamp"], zone)} for e in d["provider_events"]]}
            for d in data["deliveries"]
        ],
    }
