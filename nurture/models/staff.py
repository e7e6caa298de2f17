"""What staff work with that is not a subscriber's own record: the results summary (counts only),
the named permissions of the staff tools, and the append-only audit trail."""
from __future__ import annotations

from django.conf import settings
from django.db import models

from nurture.models.engine import Step


class StepDailyResults(models.Model):
    """What one step achieved among the emails it sent on one day (UTC): counts only, never a person.

    Filled by services/results.py (the beat task TaskNames.RESULTS_SUMMARISE), read by the results
    page (nurture/selectors/results.py). Each figure counts deliveries of the step sent that day: delivered,
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
        # The results page (/admin/nurture/results/) checks it; ROLES (services/staff.py) grants it to
        # the "Content editors", "Auditors" and "Clinical reviewers" roles.
        permissions = [("view_results", "Can see the results page (aggregate counts only)")]
        constraints = [models.UniqueConstraint(fields=["step", "day"], name="step_daily_results_unique")]
        indexes = [models.Index(fields=["day"], name="step_daily_results_day_idx")]

    def __str__(self):
        return f"Step #{self.step_id} on {self.day}"


class StaffTools(models.Model):
    """No table: holds the named permissions of the staff tools that are not one model's admin
    (nurture.admin's custom views check them; the roles in services/staff.py grant them)."""

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
        APPROVE = "approve", "approve"  # a clinical reviewer approved an article's text

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
    # A look at the suppression list: the row seen (its subscriber may be erased, or never existed).
    suppression_id = models.BigIntegerField(null=True, blank=True)
    article_id = models.BigIntegerField(null=True, blank=True)
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
