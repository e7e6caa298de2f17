"""Two-factor devices in admin: django-otp's TOTP device admin (with its QR code page, for enrolling
an authenticator app), registered again so an unknown device id is a 404 rather than a 500. Devices
are usually enrolled with `manage.py otp_enrol USERNAME`; superusers manage them here."""
from __future__ import annotations

from django.contrib import admin
from django.http import Http404
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice


class SafeTOTPDeviceAdmin(TOTPDeviceAdmin):
    def _known(self, pk) -> None:
        if not TOTPDevice.objects.filter(pk=pk).exists():
            raise Http404("There is no such device.")

    def config_view(self, request, pk):
        self._known(pk)
        return super().config_view(request, pk)

    def qrcode_view(self, request, pk):
        self._known(pk)
        return super().qrcode_view(request, pk)


if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, SafeTOTPDeviceAdmin)
