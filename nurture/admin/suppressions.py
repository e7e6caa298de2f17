"""Admin for the suppression list: staff-added suppressions go through address_suppress, so the
subscriber stops at once."""
from __future__ import annotations

from django.contrib import admin

from nurture import selectors
from nurture.models import Suppression
from nurture.services.suppression import address_suppress



@admin.register(Suppression)
class SuppressionAdmin(admin.ModelAdmin):
    list_display = ["email", "reason", "created_at"]
    search_fields = ["email"]

    def get_readonly_fields(self, request, obj=None):
        return ["email", "reason", "created_at"] if obj else ["created_at"]

    def save_model(self, request, obj, form, change):
        # Through the one suppression service, so a subscriber with this address stops at once.
        if not change:
            address_suppress(email=obj.email, reason=obj.reason or "added by staff")
            obj.pk = selectors.with_address(Suppression.objects.all(), obj.email).get().pk
