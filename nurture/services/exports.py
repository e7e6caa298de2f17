"""Staff exports of one person's data: recorded in the audit trail, then read through
nurture.export.subscriber_export, the same function as the person's own "Download my data"."""
from __future__ import annotations

from nurture.export import subscriber_export
from nurture.models import AuditEntry
from nurture.services.audit import audit_record


def subscriber_export_by_staff(*, user, subscriber_id: int, channel: str) -> dict:
    """channel: "admin" or "command". `user` is None from the command line (the entry then names
    no staff user: whoever runs manage.py is outside the admin)."""
    data = subscriber_export(subscriber_id=subscriber_id)
    audit_record(user=user, action=AuditEntry.Action.EXPORT, subscriber_id=subscriber_id,
                 detail=f"export via {channel}")
    return data
