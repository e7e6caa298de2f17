"""Care beyond the series: a reported bereavement, and the replies people send to our emails."""
from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from nurture.models.engine import Delivery, Subscriber


class Bereavement(models.Model):
    """Someone told us the person has died. One per person (the row is the "once"), final for
    sending; it goes with the subscriber row when the retention purge removes it. Who reported it
    and how: `source` (the page or the admin) and, for staff, `reported_by` (also in the audit
    trail). Never a stage or a cause of death: only that it was reported."""

    class Source(models.TextChoices):
        PREFERENCES_PAGE = "preferences_page", _("The person's preference page")
        CARER_PAGE = "carer_page", _("The carer's page")
        ADMIN = "admin", _("Staff, in the admin")

    subscriber = models.OneToOneField(Subscriber, on_delete=models.CASCADE, related_name="bereavement")
    source = models.CharField(max_length=20, choices=Source.choices)
    reported_by = models.CharField(max_length=150, blank=True,
                                   help_text="The staff username; blank from a public page.")
    reported_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The carer who asked, on that page, for one email with the organisation's bereavement-support
    # details; blank when nobody asked. Sent once: support_email_sent_at is set when it went.
    support_email_to = models.EmailField(max_length=254, blank=True)
    support_email_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Bereavement #{self.pk}"


class Reply(models.Model):
    """An email someone sent back to one of ours, from the provider's inbound webhook
    (services/replies.py). The text is kept for Subscriber care to read (shown escaped; attachments
    never stored) and purged after NURTURE_REPLY_RETENTION_DAYS. An unmatched or automatic reply is
    stored for staff and never acted on."""

    class State(models.TextChoices):
        WAITING = "waiting", _("Waiting for a person")
        HANDLED = "handled", _("Handled")
        STOP = "stop", _("Asked to stop: unsubscribed")
        AUTOMATIC = "automatic", _("Automatic reply: ignored")
        UNMATCHED = "unmatched", _("Not matched to one of our emails: not acted on")

    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE, related_name="replies")
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="replies")
    provider = models.CharField(max_length=40)
    # The provider's id for this inbound message (or its Message-ID header): a webhook delivered
    # twice is stored once.
    event_id = models.CharField(max_length=255, blank=True)
    state = models.CharField(max_length=10, choices=State.choices)
    subject = models.CharField(max_length=200, blank=True)
    text = models.TextField(blank=True,
                            help_text="The reply's plain text, cut to a length; attachments are never kept.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # This reply paused the person's series (NURTURE_REPLY_PAUSES_SERIES); marking it handled resumes it.
    paused_series = models.BooleanField(default=False)
    handled_at = models.DateTimeField(null=True, blank=True)
    handled_by = models.CharField(max_length=150, blank=True)

    class Meta:
        verbose_name_plural = "replies"
        ordering = ["received_at"]
        indexes = [models.Index(fields=["state", "received_at"], name="reply_state_received_idx")]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="reply_event_unique",
                                    condition=~models.Q(event_id="")),
        ]
        permissions = [("handle_reply", "Can read replies and mark them handled")]

    def __str__(self):
        return f"Reply #{self.pk} ({self.state})"
