"""The consent/event record: one per change a person makes (or staff make for them)."""
from __future__ import annotations

from django.utils import timezone

from nurture import wording
from nurture.models import ConsentRecord, Subscriber


def consent_record(
    *, subscriber: Subscriber, kind: str, source: str, text, confirmed: bool = False
) -> ConsentRecord:
    """One record per change: what (kind), through which page or staff action (source), and the
    wording shown, in the person's language (text: a lazy string or a function of none)."""
    return ConsentRecord.objects.create(
        subscriber=subscriber, kind=kind, source=source, language=subscriber.language,
        consent_text=wording.in_language(text, subscriber.language),
        confirmed_at=timezone.now() if confirmed else None,
    )
