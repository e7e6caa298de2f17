"""Admin for provider webhook events and per-step figures: read-only, for staff looking into a
bounce or complaint and watching what each step achieves. (Registered from NurtureConfig.ready();
nurture/admin.py holds the subscriber, series and delivery admin.)"""
from __future__ import annotations

from django.contrib import admin

from nurture.models import ProviderEvent, StepFigures
from nurture.selectors import with_engagement


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    list_display = ("timestamp", "provider", "event_type", "reject_reason", "suppressed_address", "delivery")
    list_filter = ("provider", "event_type", "suppressed_address")
    search_fields = ("provider_message_id", "event_id")
    date_hierarchy = "timestamp"
    list_select_related = ("delivery",)
    raw_id_fields = ("delivery",)

    # The provider's word on what happened: never edited by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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
