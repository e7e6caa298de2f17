"""Admin for deliveries: read-only history; staff may requeue failed ones (sending.deliveries_requeue)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from nurture import selectors, tasks
from nurture.models import Delivery
from nurture.services import sending

from nurture.admin.base import ReadOnlyAdmin, SafeActionIdsMixin, delivery_preview_link, step_label


@admin.register(Delivery)
class DeliveryAdmin(SafeActionIdsMixin, ReadOnlyAdmin):
    list_display = [
        "id", "subscriber_link", "step_display", "status", "failure_reason_short", "attempts", "message_id",
        "provider_message_id", "provider_call_started_at", "next_attempt_at", "queued_at", "sent_at", "preview",
    ]
    list_filter = ["status", "step__series"]
    list_select_related = ["step__series"]
    search_fields = ["subscriber__email", "provider_message_id", "message_id"]
    readonly_fields = [
        "subscriber_link", "step_display", "status", "failure_reason", "attempts", "articles_sent", "message_id",
        "provider_message_id", "queued_at", "sending_started_at", "provider_call_started_at", "next_attempt_at",
        "sent_at", "failed_at", "preview",
    ]
    fields = readonly_fields
    actions = ["requeue"]

    def has_delete_permission(self, request, obj=None):
        return False  # the record of what was sent; it goes when its subscriber is deleted

    def has_requeue_permission(self, request, obj=None):
        return request.user.has_perm("nurture.change_delivery")

    @admin.display(description="subscriber", ordering="subscriber_id")
    def subscriber_link(self, obj):
        return format_html(
            '<a href="{}">#{}</a>', reverse("admin:nurture_subscriber_change", args=[obj.subscriber_id]), obj.subscriber_id
        )

    @admin.display(description="step", ordering="step__position")
    def step_display(self, obj):
        return f"{obj.step.series.name} ({obj.step.series.language}) {step_label(obj.step)}"

    @admin.display(description="failure reason")
    def failure_reason_short(self, obj):
        reason = obj.failure_reason or ""
        return reason if len(reason) <= 120 else reason[:119] + "…"

    @admin.display(description="articles")
    def articles_sent(self, obj):
        shown = selectors.delivery_articles(delivery=obj)
        if not shown:
            return "— (no published article left for it)"
        return format_html_join(", ", "{} (version {})", ((a.slug, a.version) for a in shown))

    @admin.display(description="email")
    def preview(self, obj):
        return delivery_preview_link(obj.pk)

    @admin.action(description="Requeue the selected failed deliveries", permissions=["requeue"])
    def requeue(self, request, queryset):
        ids = self._within_limit(request, queryset)
        if ids is None:
            return
        requeued = sending.deliveries_requeue(delivery_ids=ids, enqueue=tasks.enqueue_send_batches)
        text = f"Requeued {requeued} failed deliver{'ies' if requeued != 1 else 'y'}: they will be sent again shortly."
        if len(ids) > requeued:
            text += f" {len(ids) - requeued} not requeued: only failed deliveries can be."
        self.message_user(request, text, messages.SUCCESS if requeued else messages.WARNING)
