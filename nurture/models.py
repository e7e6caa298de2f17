from __future__ import annotations

import functools
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from content.models import Article, Language, Stage
from content.parsing import SUBJECT_MAX_LENGTH
from nurture.validators import validate_subject_has_no_diagnosis


@functools.lru_cache(maxsize=1)
def known_time_zones() -> frozenset[str]:
    """The IANA zone names. Read once: available_timezones() walks the zone files on disk on every
    call, which was half the time of a sign-up (docs/operations.md, "Measured")."""
    return frozenset(zoneinfo.available_timezones())


def validate_time_zone(value: str) -> None:
    if value not in known_time_zones():
        raise ValidationError(_("%(value)s is not a known time zone."), params={"value": value})


class Subscriber(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending confirmation")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        UNSUBSCRIBED = "unsubscribed", _("Unsubscribed")
        SUPPRESSED = "suppressed", _("Suppressed (bounce or complaint)")

    class Cadence(models.TextChoices):
        AS_PLANNED = "as_planned", _("As often as the series plans")
        WEEKLY = "weekly", _("At most once a week")
        MONTHLY = "monthly", _("At most once a month")

    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices)
    language = models.CharField(max_length=2, choices=Language.choices, default=Language.EN)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    cadence = models.CharField(max_length=12, choices=Cadence.choices, default=Cadence.AS_PLANNED)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    series = models.ForeignKey("Series", null=True, blank=True, on_delete=models.SET_NULL, related_name="subscribers")
    # Position of the next step to plan within `series` (0-based); kept across pause/resume.
    next_step_position = models.PositiveIntegerField(default=0)
    next_send_at = models.DateTimeField(null=True, blank=True)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    # Bound into every preference and view-online link (nurture.tokens); raising it revokes them all
    # ("send me new links"). Unsubscribe links are not bound to it: they must keep working.
    link_version = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="subscriber_email_ci_unique")]
        indexes = [
            # The planner's due query: active and next_send_at <= now. Partial, so it holds only
            # the subscribers who can be due, and its cost follows what is due.
            models.Index(
                fields=["next_send_at"],
                name="subscriber_due_idx",
                condition=models.Q(status="active"),
            ),
        ]

    def __str__(self):
        return f"Subscriber #{self.pk}"


class ConsentRecord(models.Model):
    """What a person agreed to, and when: kept as evidence of opt-in."""

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="consents")
    consent_text = models.TextField()
    language = models.CharField(max_length=2, choices=Language.choices)
    given_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)


class SignupRequest(models.Model):
    """One sign-up from the public form, as it arrived. The form stores this row and nothing else
    (the same work for a new and a known address); a worker then decides what it means
    (services/signup.py). The choices wait here until the person confirms from their inbox, so a
    sign-up by someone else never changes what we hold about them."""

    class State(models.TextChoices):
        RECEIVED = "received", _("Received, not yet looked at")
        CONFIRM = "confirm", _("Confirmation email due or sent")
        ALREADY = "already", _("Already subscribed: preference link email due or sent")
        CONFIRMED = "confirmed", _("Confirmed")
        DROPPED = "dropped", _("Dropped (suppressed, throttled or superseded)")

    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=100, blank=True)
    stage = models.CharField(max_length=20, choices=Stage.choices)
    language = models.CharField(max_length=2, choices=Language.choices)
    time_zone = models.CharField(max_length=64, default="UTC")
    consent_text = models.TextField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE, related_name="signup_requests")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Sign-up request #{self.pk} ({self.state})"


class Series(models.Model):
    stage = models.CharField(max_length=20, choices=Stage.choices)
    language = models.CharField(max_length=2, choices=Language.choices)
    name = models.CharField(max_length=200)
    # Fingerprint of the series (name, steps, their articles) as last imported by load_content; lets the
    # import tell a changed file from staff edits in admin. Blank: never imported (made in admin).
    imported_hash = models.CharField(max_length=64, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "series"
        ordering = ["stage", "language"]
        constraints = [models.UniqueConstraint(fields=["stage", "language"], name="series_unique_stage_language")]

    def __str__(self):
        return f"{self.name} ({self.get_stage_display()}, {self.language})"


class Step(models.Model):
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveIntegerField(help_text="Order within the series, from 0.")
    delay_days = models.PositiveIntegerField(help_text="Days after the previous step (0: at once).")
    subject = models.CharField(
        max_length=SUBJECT_MAX_LENGTH,
        help_text="Never name a diagnosis: subjects show on lock screens.",
        validators=[validate_subject_has_no_diagnosis],
    )
    articles = models.ManyToManyField(Article, through="StepArticle", related_name="steps")

    class Meta:
        ordering = ["series", "position"]
        constraints = [models.UniqueConstraint(fields=["series", "position"], name="step_unique_position")]

    def __str__(self):
        return f"{self.series.name} #{self.position + 1}: {self.subject}"


class StepFigures(Step):
    """The same steps, shown in the admin with what each achieved (selectors.step_engagement)."""

    class Meta:
        proxy = True
        verbose_name = "step figures"
        verbose_name_plural = "step figures"


class StepArticle(models.Model):
    step = models.ForeignKey(Step, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.PROTECT)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["step", "order"]
        constraints = [models.UniqueConstraint(fields=["step", "article"], name="step_article_unique")]


class Delivery(models.Model):
    """One step sent (or to be sent) to one subscriber. Unique per subscriber and step: never twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        # Handed to the provider, no answer heard (read timeout, worker lost mid-call): the
        # provider may have it. Settled by its webhook events, or failed after a window.
        UNKNOWN = "unknown", _("Unknown outcome")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="deliveries")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Which version of each article went out: {"<article id>": <version>}.
    article_versions = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255, blank=True, help_text="Our Message-ID header.")
    provider_message_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    # Set just before the provider is called; with no provider_message_id it means "the provider
    # may have it": the reconciler never resends such a row (docs/scheduler.md).
    provider_call_started_at = models.DateTimeField(null=True, blank=True)
    # After a transient error: when the retry is due (lets the reconciler find lost retries).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["subscriber", "step"], name="delivery_unique_subscriber_step")]
        indexes = [
            models.Index(fields=["status", "sending_started_at"], name="delivery_status_idx"),
            # Provider webhooks find their delivery by it (services/webhooks.py); unsent rows stay out.
            models.Index(
                fields=["provider_message_id"],
                name="delivery_provider_msg_idx",
                condition=~models.Q(provider_message_id=""),
            ),
            # The results summary (services/results.py) reads the recent days' sends by it.
            models.Index(fields=["sent_at"], name="delivery_sent_at_idx", condition=models.Q(sent_at__isnull=False)),
        ]

    def __str__(self):
        return f"Delivery #{self.pk} ({self.status})"


class Suppression(models.Model):
    """An address we must not write to again (hard bounce, complaint, refused by the provider)."""

    email = models.EmailField(max_length=254)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="suppression_email_ci_unique")]


class ProviderEvent(models.Model):
    """One delivery or engagement event from the email provider's webhook, stored once per
    (provider, event_id). Health-data rule: no recipient address, no raw payload, no click URL
    (it may carry a personal link) and no user agent; the delivery link says who it concerns."""

    provider = models.CharField(max_length=40)
    # The provider's event id, or a digest of the event's payload when the provider sends none
    # (Postmark's opens and deliveries), so a webhook delivered twice is stored once.
    event_id = models.CharField(max_length=100)
    event_type = models.CharField(max_length=20)  # anymail's normalised EventType
    delivery = models.ForeignKey(Delivery, null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    # Kept for events whose delivery is unknown (or gone): lets staff look it up at the provider.
    provider_message_id = models.CharField(max_length=255, blank=True)
    reject_reason = models.CharField(max_length=20, blank=True)  # anymail's normalised RejectReason
    description = models.CharField(max_length=200, blank=True, help_text="The provider's short reason, addresses removed.")
    suppressed_address = models.BooleanField(default=False, help_text="This event put the address on the suppression list.")
    # False: the event names a message we did not send to that address (or, for a provider that
    # sends no message id, an address we have not emailed lately). Stored for staff, never acted on.
    matched = models.BooleanField(default=True, help_text="The event matches a message we sent to that address.")
    timestamp = models.DateTimeField(help_text="When the provider says it happened.")
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="provider_event_unique")]
        indexes = [models.Index(fields=["delivery", "event_type"], name="provider_event_delivery_idx")]

    def __str__(self):
        return f"{self.provider} {self.event_type} #{self.pk}"


class StepDailyResults(models.Model):
    """What one step achieved among the emails it sent on one day (UTC): counts only, never a person.

    Filled by services/results.py (the beat task "nurture.results_summarise"), read by the results
    page (nurture/results.py). Each figure counts deliveries of the step sent that day: delivered,
    bounced, complained, opened, clicked (a provider event of that type, distinct deliveries), and
    unsubscribed / paused (the person left or paused within NURTURE_RESULTS_LEAVE_WINDOW_DAYS after
    this email, and it was the last one they had before). Kept when people are later erased."""

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="daily_results")
    day = models.DateField()
    sent = models.PositiveIntegerField(default=0)
    delivered = models.PositiveIntegerField(default=0)
    bounced = models.PositiveIntegerField(default=0)
    complained = models.PositiveIntegerField(default=0)
    opened = models.PositiveIntegerField(default=0)
    clicked = models.PositiveIntegerField(default=0)
    unsubscribed = models.PositiveIntegerField(default=0)
    paused = models.PositiveIntegerField(default=0)
    summarised_at = models.DateTimeField()

    class Meta:
        verbose_name = "step results per day"
        verbose_name_plural = "step results per day"
        default_permissions = ()
        # The results page (/admin/nurture/results/) checks it; migration 0009_issue15_results_permission grants it
        # to the "Content editors" and "Auditors" roles.
        permissions = [("view_results", "Can see the results page (aggregate counts only)")]
        constraints = [models.UniqueConstraint(fields=["step", "day"], name="step_daily_results_unique")]
        indexes = [models.Index(fields=["day"], name="step_daily_results_day_idx")]

    def __str__(self):
        return f"Step #{self.step_id} on {self.day}"


class StaffTools(models.Model):
    """No table: holds the named permissions of the staff tools that are not one model's admin
    (nurture.admin's custom views check them; the roles in migration 0011_issue9_roles grant them)."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("preview_emails", "Can preview emails with a sample reader, see journeys and test-send to themselves"),
            ("preview_as_subscriber", "Can preview an email as a real subscriber (shows their name and stage)"),
            ("view_overview", "Can see the sending overview's counts"),
        ]


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("The audit trail is append-only: entries are never changed.")

    def delete(self):
        raise PermissionError("The audit trail is append-only: entries go only through the retention purge.")


class AuditEntry(models.Model):
    """One look at (or change to) one person's data by a staff user. Ids only: never the address,
    name or stage. Append-only: rows are never updated, and deleted only by the retention purge
    (nurture.services.audit.audit_purge_expired); on PostgreSQL a trigger enforces both."""

    class Action(models.TextChoices):
        VIEW = "view", "view"
        CHANGE = "change", "change"
        EXPORT = "export", "export"
        ERASE = "erase", "erase"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Who: the user id and username stay as written when the staff account is later deleted (no
    # database constraint, nothing cascades: the trail is never updated).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    username = models.CharField(max_length=150)
    action = models.CharField(max_length=8, choices=Action.choices)
    # Plain ids, not foreign keys: the entry outlives an erased subscriber or delivery.
    subscriber_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    delivery_id = models.BigIntegerField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True, help_text="Which page or operation; never personal data.")

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-pk"]
        default_permissions = ("view",)
        permissions = [("export_auditentry", "Can export the audit trail as CSV")]
        verbose_name = "audit entry"
        verbose_name_plural = "audit trail"

    def __str__(self):
        return f"Audit #{self.pk}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise PermissionError("The audit trail is append-only: entries are never changed.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("The audit trail is append-only: entries go only through the retention purge.")
