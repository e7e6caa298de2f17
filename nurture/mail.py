"""Kept so the documented EMAIL_BACKEND=nurture.mail.OutboxEmailBackend keeps working; the backend
lives in nurture.emails.outbox."""
from nurture.emails.outbox import OutboxEmailBackend

__all__ = ["OutboxEmailBackend"]
