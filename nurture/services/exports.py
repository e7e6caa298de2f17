"""Staff exports of one person's data: recorded in the audit trail (where it exists), then read
through nurture.export.subscriber_export, the same function as the person's own "Download my data"."""
from __future__ import annotations

import logging

from nurture.export import subscriber_export

logger = logging.getLogger(__name__)


def _audit(*, user, subscriber_id: int, detail: str) -> None:
    try:
        from nurture.services.audit import audit_record  # issue 9's audit trail
    except ImportError:  # not on this branch yet: the log line below is the record
        logger.info("staff export subscriber=%s user=%s (%s)", subscriber_id, getattr(user, "pk", None), detail)
        return
    audit_record(user=user, action="subscriber_export", subscriber_id=subscriber_id, detail=detail)


def subscriber_export_by_staff(*, user, subscriber_id: int, channel: str) -> dict:
    """channel: "admin" or "command". `user` is None from the command line."""
    data = subscriber_export(subscriber_id=subscriber_id)
    _audit(user=user, subscriber_id=subscriber_id, detail=f"export via {channel}")
    return data
