"""Per-step figures: what each step achieved (sent, delivered, opened, clicked, bounced). Read-only."""
from __future__ import annotations

from django.contrib import admin

from nurture.models import StepFigures
from nurture.selectors import with_engagement


@admin.register(StepFigures)
class StepFiguresAdmin(admin.ModelAdmin):
    """What each step achieved: sent, and deliveries with a delivered / opened / clicked / bounced
    event (distinct deliveries). Read-only; steps are edited under Series."""

    list_display = ("__str__", "sent", "delivered", "opened", "clicked", "bounced")
    list_filter = ("series__stage", "series__language")
    list_select_related = ("series",)
    ordering = ("series__stage", "series__language", "position")

    def get_queryset(self, request):
        # One grouped query for the whole page, not two per row.
        return with_engagement(super().get_queryset(request))

    @admin.display(description="sent", ordering="sent_count")
    def sent(self, obj):
        return obj.sent_count

    @admin.display(description="delivered", ordering="delivered_count")
    def delivered(self, obj):
        return obj.delivered_count

    @admin.display(description="opened (if tracked)", ordering="opened_count")
    def opened(self, obj):
        return obj.opened_count

    @admin.display(description="clicked (if tracked)", ordering="clicked_count")
    def clicked(self, obj):
        return obj.clicked_count

    @admin.display(description="bounced", ordering="bounced_count")
    def bounced(self, obj):
        return obj.bounced_count

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
