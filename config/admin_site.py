"""The admin site: Django's, with two-factor sign-in (django-otp, TOTP) whenever DEBUG is off.

With DEBUG off a staff user gets in only with their password *and* a current code from a TOTP
device enrolled for them (`manage.py otp_enrol USERNAME`); a session that was not verified by a
device is treated as not staff. With DEBUG on (`make run`'s demo) the password alone is enough.
The custom staff views (nurture.admin) ask this site's `has_permission` too, so they follow the
same rule.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.admin import AdminSite
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class NurtureAdminSite(OTPAdminSite):
    site_header = "Nurture staff"
    site_title = "Nurture staff"
    index_title = "Nurture"

    def __init__(self, name: str = "admin"):
        super().__init__(name)

    @staticmethod
    def two_factor_required() -> bool:
        return not settings.DEBUG

    @property
    def login_form(self):
        return OTPAdminAuthenticationForm if self.two_factor_required() else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if self.two_factor_required() else None

    def has_permission(self, request) -> bool:
        if self.two_factor_required():
            return super().has_permission(request)  # active staff *and* verified by a device
        return AdminSite.has_permission(self, request)
