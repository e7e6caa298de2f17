"""Admin for the complaint brake (services/brake.py): the brakes that tripped, with their figures,
and the one way to lift an engaged one: the "Resume series sending" action (audited)."""
from __future__ import annotations

from django.contrib import admin, messages

from nurture.admin.base import SafeActionIdsMixin, ViewOnlyAdmin
from nurture.models import SendingBrake
from nurture.services.brake import sending_brake_resume

RESUME_PERMISSION = "nurture.resume_sendingbrake"


@admin.register(SendingBrake)
class SendingBrakeAdmin(SafeActionIdsMixin, ViewOnlyAdmin):
    list_display = ["tripped_at", "engaged", "reason", "emails", "complaints", "hard_bounces", "resumed_at",
                    "resumed_by"]
    list_filter = ["engaged"]
    actions = ["resume"]

    def has_resume_permission(self, request, obj=None):
        return request.user.has_perm(RESUME_PERMISSION)

    @admin.action(description="Resume series sending", permissions=["resume"])
    def resume(self, request, queryset):
        resumed = [brake.pk for brake in queryset.filter(engaged=True)[:1]
                   if sending_brake_resume(brake_id=brake.pk, user=request.user)]
        if resumed:
            self.message_user(request, "Series sending resumed. Queued series emails go out within a minute.",
                              messages.SUCCESS)
        else:
            self.message_user(request, "None of the chosen brakes is engaged: nothing to resume.", messages.WARNING)
