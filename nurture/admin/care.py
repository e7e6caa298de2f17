"""Subscriber care in the admin: report a bereavement (an action on subscribers, two steps) and the
"Replies" queue. Thin: the services write and audit; these pages ask, confirm and say what happened."""
from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from nurture.models import Bereavement, Subscriber
from nurture.services.bereavement import bereavement_report


@admin.action(description="Tell us this person has died (stops every email)…", permissions=["manage"])
def report_bereavement(modeladmin, request, queryset):
    """One person at a time: a page says what will happen; the second press reports it."""
    ids = list(queryset.values_list("pk", flat=True)[:2])
    if len(ids) != 1:
        modeladmin.message_user(request, "Choose exactly one subscriber. Nothing was changed.", messages.ERROR)
        return None
    subscriber = Subscriber.objects.get(pk=ids[0])
    if Bereavement.objects.filter(subscriber_id=subscriber.pk).exists():
        modeladmin.message_user(request, f"A bereavement was already reported for {subscriber}. Nothing was changed.", messages.WARNING)
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
