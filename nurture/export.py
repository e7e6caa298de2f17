"""Reads: everything held about one person, for "Download my data", the staff export and
`manage.py subscriber_export`. One function, so the three always hand over the same thing.

A fixed number of queries whatever the history's length. Values are JSON-ready (ISO 8601 times).
"""
from __future__ import annotations

import datetime as dt

from content.models import Article, ArticleVersion
from nurture.models import CarerHandoff, ConsentRecord, Delivery, ProviderEvent, Reply, Subscriber

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
    recorded = {
        (int(article_id), version)
        for d in deliveries for article_id, version in (d.article_versions or {}).items()
        if str(article_id).isdigit() and isinstance(version, int)
    }
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
        for article_id, version in sorted((delivery.article_versions or {}).items()):
            if not str(article_id).isdigit():
                continue
            article = articles.get(int(article_id))
            rows.append({
                "slug": article.slug if article else None,
                "language": article.language if article else None,
                "title": titles.get((int(article_id), version)) or (article.title if article else None),
                "version": version,
            })
        return rows

    pauses = []
    for record in consents:
        if record.kind == ConsentRecord.Kind.PAUSE:
            pauses.append({"paused_at": _iso(record.given_at), "source": record.source, "resumed_at": None, "resumed_by": None})
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
            # Days and hours that suit them, and the email format (issue 24).
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
