"""Admin for deliveries: read-only history; staff may requeue failed ones (sending.deliveries_requeue).

A delivery's page, the list narrowed to people (a search, or ?subscriber=<id>) and each requeue are in
the audit trail (nurture.services.audit), ids only."""
from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from nurture import sending, tasks
from nurture.models import Delivery
from nurture.selectors.deliveries import delivery_articles
from nurture.services.audit import audit_record, audit_record_many

from nurture.admin.base import (
    CheckedListAdmin, ReadOnlyAdmin, SafeActionIdsMixin, audited_subscriber_ids, delivery_preview_link, step_label,
)


@admin.register(Delivery)
class DeliveryAdmin(SafeActionIdsMixin, CheckedListAdmin, ReadOnlyAdmin):
    list_display = [
        "id", "subscriber_link", "step_display", "status", "failure_reason_short", "attempts", "message_id",
        "provider_message_id", "provider_call_started_at", "next_attempt_at", "queued_at", "sent_at", "preview",
    ]
    list_filter = ["status", "unanswered", "step__series"]
    # The filters beside the list, and one subscriber's deliveries (audited below); nothing else.
    declared_filters_only = True
    extra_list_lookups = ("subscriber", "subscriber__id__exact")
    list_select_related = ["step__series"]
    search_fields = ["subscriber__email", "provider_message_id", "message_id"]
    readonly_fields = [
        "subscriber_link", "step_display", "status", "failure_reason", "unanswered", "attempts", "articles_sent",
        "message_id",
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
            '<a href="{}">#{}</a>', reverse("admin:nurture_subscriber_change", args=[obj.subscriber_id]),
            obj.subscriber_id
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
        shown = delivery_articles(delivery=obj)
        if not shown:
            return "— (no published article left for it)"
        return format_html_join(", ", "{} (version {})", ((a.title, a.version) for a in shown))

    @admin.display(description="email")
    def preview(self, obj):
        return delivery_preview_link(obj.pk)

    @admin.action(description="Requeue the selected failed deliveries", permissions=["requeue"])
    def requeue(self, request, queryset):
        ids = self._within_limit(request, queryset)
        if ids is None:
            return
        before = dict(Delivery.objects.filter(pk__in=ids, status=Delivery.Status.FAILED).values_list("pk",
                                                                                                     "subscriber_id"))
        requeued = sending.deliveries_requeue(delivery_ids=ids, enqueue=tasks.enqueue_send_batches)
        for delivery_id, subscriber_id in sorted(before.items()):
            audit_record(user=request.user, action="change", subscriber_id=subscriber_id, delivery_id=delivery_id,
                         detail="requeue")
        text = f"Requeued {requeued} failed deliver{'ies' if requeued != 1 else 'y'}: they will be sent again shortly."
        if len(ids) > requeued:
            text += f" {len(ids) - requeued} not requeued: only failed deliveries can be."
        self.message_user(request, text, messages.SUCCESS if requeued else messages.WARNING)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        original = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and original is not None:
            audit_record(user=request.user, action="view", subscriber_id=original.subscriber_id,
                         delivery_id=original.pk,
                         detail="delivery page")
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        if request.GET.get("q") or any(key.startswith("subscriber") for key in request.GET):
            ids = audited_subscriber_ids(response, attribute="subscriber_id")
            audit_record_many(user=request.user, action="view", subscriber_ids=ids, detail="delivery list search")
        return response
