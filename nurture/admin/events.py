"""Admin for provider webhook events: read-only, for staff looking into a bounce or complaint."""
from __future__ import annotations

from django.contrib import admin

from nurture.models import ProviderEvent


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    # "matched": False for an event about a message we did not send to that address; such events
    # are kept for staff to look into and never acted on (docs/security.md, "Public surface").
    list_display = ("timestamp", "provider", "event_type", "reject_reason", "matched", "suppressed_address", "delivery")
    list_filter = ("provider", "event_type", "matched", "suppressed_address")
    search_fields = ("provider_message_id", "event_id")
    date_hierarchy = "timestamp"
    list_select_related = ("delivery",)
    raw_id_fields = ("delivery",)

    # The provider's word on what happened: never edited by hand.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
