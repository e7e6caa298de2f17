"""The engine's records: subscribers and what they agreed to, series and steps, deliveries, suppressions,
provider events."""
from __future__ import annotations

import functools
import zoneinfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from content.models import Article, Language, Stage
from content.parsing import SUBJECT_MAX_LENGTH
from nurture.addresses import mailbox_of
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
        # Someone told us the person has died (nurture.services.bereavement): final for sending,
        # and not a "leave" in the results.
        DECEASED = "deceased", _("Died (bereavement reported)")

    class Cadence(models.TextChoices):
        AS_PLANNED = "as_planned", _("Every few days (the usual pace)")
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
    # A pause chosen from an email's "Pause these emails" link (or the preference centre): the
    # series resumes by itself at this instant (services.subscribers.subscribers_resume_due).
    # Null while paused: paused until they resume themselves.
    paused_until = models.DateTimeField(null=True, blank=True)
    # The first email after a pause opens with a short "welcome back" line; the planner moves this
    # onto the delivery it plans (Delivery.welcome_back).
    welcome_back_due = models.BooleanField(default=False)
    # Health data (like the stage): the day their treatment is planned to start, if they told us.
    # Never in logs, links, provider payloads; goes with the subscriber row.
    treatment_date = models.DateField(null=True, blank=True)
    # Bound into every preference and view-online link (nurture.tokens); raising it revokes them all
    # ("send me new links"). Unsubscribe links are not bound to it: they must keep working.
    link_version = models.PositiveIntegerField(default=0)
    # Days and hours that suit them (preference centre; nurture.rules.into_send_window): weekdays
    # with no email ("5,6": Saturday and Sunday, Monday is 0), and a part of the organisation's
    # daytime window ("" any, or a key of rules.DAY_PARTS), both in their own time zone.
    quiet_days = models.CharField(max_length=13, blank=True, default="")
    time_of_day = models.CharField(max_length=10, blank=True, default="")
    # How their emails look: a single text/plain part (same links), or a larger-text layout.
    plain_text = models.BooleanField(default=False)
    larger_text = models.BooleanField(default=False)
    # The last "Has anything changed?" email (services/checkins.py): never more often than the interval.
    last_checkin_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [("export_subscriber", "Can export everything held about a subscriber")]
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
    """What a person agreed to or changed, and when: one record per change, kept as evidence.

    `consent_text` is the wording they were shown, in their language; `source` says through which
    page, link or staff action (e.g. "signup_page", "preferences_page", "pause_link", "admin").
    Never the stage or a treatment date in the text: the kind says what changed."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", _("Sign-up")
        CONFIRM = "confirm", _("Confirmation")
        STAGE_CHANGE = "stage_change", _("Stage changed")
        LANGUAGE_CHANGE = "language_change", _("Language changed")
        CADENCE_CHANGE = "cadence_change", _("How often changed")
        CARER_REQUESTED = "carer_requested", _("Carer asked")
        CARER_CONFIRMED = "carer_confirmed", _("Carer agreed")
        CARER_STOPPED = "carer_stopped", _("Carer hand-off stopped")
        TREATMENT_DATE_GIVEN = "treatment_date_given", _("Treatment date given")
        TREATMENT_DATE_REMOVED = "treatment_date_removed", _("Treatment date removed")
        PAUSE = "pause", _("Paused")
        RESUME = "resume", _("Resumed")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        NAME_CHANGE = "name_change", _("Name changed")
        SUPPRESSED = "suppressed", _("Emails stopped (bounce, complaint or the provider)")
        BEREAVEMENT = "bereavement", _("Bereavement reported")
        DELIVERY_PREFERENCES = "delivery_preferences", _("Days, times or email format changed")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="consents")
    kind = models.CharField(max_length=30, choices=Kind.choices, default=Kind.SIGNUP)
    source = models.CharField(max_length=40, blank=True)
    consent_text = models.TextField()
    language = models.CharField(max_length=2, choices=Language.choices)
    given_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "given_at"], name="consent_kind_given_idx")]

    def __str__(self):
        # What it records, as staff read it in the admin (never the wording's details or a stage).
        when = self.given_at.strftime("%Y-%m-%d %H:%M UTC") if self.given_at else "not saved yet"
        return f"{self.get_kind_display()}, {when}"


class CarerHandoff(models.Model):
    """A subscriber hands their emails to someone helping them. Nothing goes to the carer until the
    carer confirms from their own inbox; "instead of me" also waits for the subscriber's own
    confirmation from their inbox (a leaked link alone cannot move anyone's emails). Either of
    them can stop it; the subscriber is told of every step (services/carers.py)."""

    class Mode(models.TextChoices):
        INSTEAD = "instead", _("Instead of me")
        AS_WELL = "as_well", _("As well as me")

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for the carer to confirm")
        ACTIVE = "active", _("Active")
        STOPPED = "stopped", _("Stopped")

    subscriber = models.ForeignKey(Subscriber, on_delete=models.CASCADE, related_name="carer_handoffs")
    carer_email = models.EmailField(max_length=254)
    mode = models.CharField(max_length=10, choices=Mode.choices, default=Mode.INSTEAD)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When it came into force (pending -> active).
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Each side's own confirmation: the carer's from the carer's inbox, the subscriber's (needed
    # for "instead of me" only) from the subscriber's.
    carer_confirmed_at = models.DateTimeField(null=True, blank=True)
    subscriber_confirmed_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # subscriber / carer / staff / replaced / new_links / bounce / complaint
    stopped_by = models.CharField(max_length=20, blank=True)

    class Meta:
        constraints = [
            # At most one hand-off in play per subscriber.
            models.UniqueConstraint(
                fields=["subscriber"], name="carer_handoff_one_open",
                condition=models.Q(status__in=["pending", "active"]),
            ),
        ]

    def __str__(self):
        return f"Carer hand-off #{self.pk} ({self.status})"


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
    # Health data, optional (recently diagnosed only): applied to the subscriber on confirmation.
    treatment_date = models.DateField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.RECEIVED)
    subscriber = models.ForeignKey(Subscriber, null=True, blank=True, on_delete=models.CASCADE,
                                   related_name="signup_requests")
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
    before_treatment = models.BooleanField(
        default=False,
        help_text=(
            "Matters before treatment starts: for someone who gave a treatment date, sent early enough to arrive "
            "before it."
        ),
    )
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


class StepArticle(models.Model):
    step = models.ForeignKey(Step, on_delete=models.CASCADE)
    article = models.ForeignKey(Article, on_delete=models.PROTECT)
    order = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["step", "order"]
        constraints = [models.UniqueConstraint(fields=["step", "article"], name="step_article_unique")]

    def __str__(self):
        return self.article.title  # what the admin's step form names each row by


class Delivery(models.Model):
    """One step sent (or to be sent) to one address: the subscriber's own copy, or (carer_handoff
    set) the copy built for the carer they handed their emails to, with its own Message-ID, links
    and outcome. Unique per subscriber and step for their own copy, per hand-off and step for a
    carer's: never twice."""

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
    # Set: the carer's copy (to handoff.carer_email, on the subscriber's behalf). Null: the subscriber's own.
    # No plain index: delivery_unique_carer_step serves lookups by handoff (migration 0003 says why).
    carer_handoff = models.ForeignKey(CarerHandoff, null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="deliveries", db_index=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    # Which version of each article went out: {"<article id>": <version>}.
    article_versions = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255, blank=True, help_text="Our Message-ID header.")
    provider_message_id = models.CharField(max_length=255, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    # Failed for want of an answer: handed to the provider, and no word from it (its answer lost, no
    # webhook event) within NURTURE_UNKNOWN_OUTCOME_SECONDS. It may have arrived; a late answer still
    # settles it. failure_reason says the same in words, for staff.
    unanswered = models.BooleanField(
        default=False, db_default=False,  # db_default: rows the planner inserts in raw SQL too
        help_text="Failed because the provider never answered: it may have the email.",
    )
    queued_at = models.DateTimeField(auto_now_add=True)
    sending_started_at = models.DateTimeField(null=True, blank=True)
    # Set just before the provider is called; with no provider_message_id it means "the provider
    # may have it": the reconciler never resends such a row (docs/scheduler.md).
    provider_call_started_at = models.DateTimeField(null=True, blank=True)
    # After a transient error: when the retry is due (lets the reconciler find lost retries).
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    # The first email after a pause: it opens with a short "welcome back" line.
    welcome_back = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["subscriber", "step"], name="delivery_unique_subscriber_step",
                condition=models.Q(carer_handoff__isnull=True),
            ),
            models.UniqueConstraint(
                fields=["carer_handoff", "step"], name="delivery_unique_carer_step",
                condition=models.Q(carer_handoff__isnull=False),
            ),
        ]
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

    @property
    def for_carer(self) -> bool:
        return self.carer_handoff_id is not None

    @property
    def to_address(self) -> str:
        """The one address this copy goes to. Load carer copies with select_related("carer_handoff")."""
        return self.carer_handoff.carer_email if self.carer_handoff_id else self.subscriber.email

    @staticmethod
    def read_article_versions(stored) -> dict[int, int]:
        """{article id: version} from a stored `article_versions` value (JSON keys are text), the one reader;
        planned rows hold version 0 (planning.PLANNED_VERSION); malformed entries are left out."""
        return {int(k): v for k, v in (stored or {}).items() if str(k).isdigit() and isinstance(v, int)}

    def recorded_article_versions(self) -> dict[int, int]:
        """{article id: version}: what the sender rendered (sent), or the planned article ids (not yet)."""
        return self.read_article_versions(self.article_versions)


class Suppression(models.Model):
    """An address we must not write to again (hard bounce, complaint, refused by the provider)."""

    email = models.EmailField(max_length=254)
    # The mailbox the address reaches (nurture.addresses.mailbox_of), what every check compares, so
    # a suppressed or erased mailbox gets nothing under any spelling. Set on save.
    mailbox = models.CharField(max_length=254, db_index=True, default="", editable=False)
    reason = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("email"), name="suppression_email_ci_unique")]

    def save(self, *args, **kwargs):
        self.mailbox = mailbox_of(self.email)
        super().save(*args, **kwargs)


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
    description = models.CharField(max_length=200, blank=True,
                                   help_text="The provider's short reason, addresses removed.")
    suppressed_address = models.BooleanField(default=False,
                                             help_text="This event put the address on the suppression list.")
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
