"""Subscriber care in the admin: report a bereavement (an action on subscribers, two steps) and the
"Replies" queue. Thin: the services write and audit; these pages ask, confirm and say what happened."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Case, When
from django.template.defaultfilters import linebreaksbr
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from nurture.admin.base import SafeActionIdsMixin, ViewOnlyAdmin
from nurture.models import Bereavement, Reply, Subscriber
from nurture.selectors.subscribers import subscriber_bereavement_reported
from nurture.services.audit import audit_record, audit_record_many
from nurture.services.bereavement import bereavement_report
from nurture.services.replies import reply_mark_handled


@admin.action(description="Tell us this person has died (stops every email)…", permissions=["manage"])
def report_bereavement(modeladmin, request, queryset):
    """One person at a time: a page says what will happen; the second press reports it."""
    ids = list(queryset.values_list("pk", flat=True)[:2])
    if len(ids) != 1:
        modeladmin.message_user(request, "Choose exactly one subscriber. Nothing was changed.", messages.ERROR)
        return None
    subscriber = Subscriber.objects.get(pk=ids[0])
    if subscriber_bereavement_reported(subscriber_id=subscriber.pk):
        modeladmin.message_user(request, f"A bereavement was already reported for {subscriber}. Nothing was changed.",
                                messages.WARNING)
        return None
    if "apply" in request.POST:
        outcome = bereavement_report(subscriber_id=subscriber.pk, source=Bereavement.Source.ADMIN, user=request.user)
        modeladmin.log_change(request, subscriber, "Bereavement reported through the admin.")
        modeladmin.message_user(
            request,
            f"Bereavement recorded for {subscriber}: no more emails will go to them or to a carer "
            f"({outcome.cancelled} not yet sent were cancelled). No email was sent about it.",
            messages.SUCCESS,
        )
        return None
    return TemplateResponse(request, "admin/nurture/subscriber/action_confirm.html", {
        **modeladmin.admin_site.each_context(request),
        "title": "Report that this person has died?",
        "opts": modeladmin.model._meta,
        "subscribers": [subscriber],
        "action": "report_bereavement",
        "intro": (
            "Every email to them and to anyone helping them stops at once, including any queued or being prepared; "
            "their address is kept off every future series. No email is sent about it. This cannot be undone."
        ),
        "button": "Yes, they have died: stop every email",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    })


# --- the Replies queue --------------------------------------------------------------------------------

HANDLE_REPLY = "nurture.handle_reply"


@admin.register(Reply)
class ReplyAdmin(SafeActionIdsMixin, ViewOnlyAdmin):
    """Replies people sent to our emails. Only staff with nurture.handle_reply (Subscriber care) see
    them; every look is in the audit trail. The text is shown as plain text (escaped), never as HTML."""

    list_display = ["id", "received_at", "state", "subscriber_id", "step", "subject"]
    list_filter = ["state"]
    list_select_related = ["delivery__step__series"]
    ordering = ["received_at"]  # the oldest waiting first
    fields = ["received_at", "state", "subscriber_link", "step", "subject", "text_shown", "handled_at", "handled_by"]
    readonly_fields = fields
    actions = ["mark_handled"]

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(HANDLE_REPLY)

    def has_handle_permission(self, request, obj=None):
        return request.user.has_perm(HANDLE_REPLY)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.GET.get("state__exact") or request.GET.get("o") else qs.order_by(
            Case(When(state=Reply.State.WAITING, then=0), default=1), "received_at")

    @admin.display(description="step")
    def step(self, obj):
        return f"{obj.delivery.step.series.name} #{obj.delivery.step.position + 1}" if obj.delivery_id else "—"

    @admin.display(description="subscriber")
    def subscriber_link(self, obj):
        if obj.subscriber_id is None:
            return "— (not matched to one of our emails)"
        return format_html('<a href="{}">Subscriber #{}</a>',
                           reverse("admin:nurture_subscriber_change", args=[obj.subscriber_id]), obj.subscriber_id)

    @admin.display(description="text")
    def text_shown(self, obj):
        return linebreaksbr(obj.text or "(no text kept)", autoescape=True)  # escaped: never the sender's HTML

    @admin.action(description="Mark the selected replies handled (resumes a series they paused)",
                  permissions=["handle"])
    def mark_handled(self, request, queryset):
        ids = self._within_limit(request, queryset.filter(state=Reply.State.WAITING))
        if ids is None:
            return
        with transaction.atomic():
            for reply_id in ids:
                reply_mark_handled(reply_id=reply_id, user=request.user)
        self.message_user(request, f"Marked {len(ids)} repl{'y' if len(ids) == 1 else 'ies'} handled.",
                          messages.SUCCESS)

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        rows = getattr(response, "context_data", {}).get("cl")
        if rows is not None:
            ids = [r.subscriber_id for r in rows.result_list if r.subscriber_id]
            if ids:
                audit_record_many(user=request.user, action="view", subscriber_ids=ids, detail="replies queue")
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        original = (getattr(response, "context_data", None) or {}).get("original")
        if request.method == "GET" and response.status_code == 200 and original is not None and original.subscriber_id:
            audit_record(user=request.user, action="view", subscriber_id=original.subscriber_id, detail="reply")
        return response
