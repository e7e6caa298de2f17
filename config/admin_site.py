"""The admin site: Django's, with two-factor sign-in (django-otp, TOTP) whenever DEBUG is off.

With DEBUG off a staff user gets in only with their password *and* a current code from a TOTP
device enrolled for them (`manage.py otp_enrol USERNAME`); a session that was not verified by a
device is treated as not staff. With DEBUG on (`make run`'s demo) the password alone is enough.
The custom staff views (nurture.admin) ask this site's `has_permission` too, so they follow the
same rule.
"""
from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib.admin import AdminSite
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


class TwoFactorLoginForm(OTPAdminAuthenticationForm):
    """django-otp's admin sign-in, asking for username, password and code at once, and telling
    nothing about which of them was wrong.

    django-otp's own form answers a right password with a different page (a device list, the
    password kept in its field, "Please enter your OTP token"): that tells someone guessing
    passwords when they found one. Here every failure gets the same message and the same page
    (no device list, the password field empty), and a right password with a wrong or missing code
    counts as a failed sign-in for the lockout (django-axes) like a wrong password.

    A user with one confirmed device uses it; with several, the code is tried against each
    (django-otp's match_token), since there is no device list to choose from."""

    error_messages = {
        **OTPAdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Please enter a correct %(username)s, password and current code from your authenticator app. "
            "Note that the username and password may be case-sensitive."
        ),
    }

    def _chosen_device(self, user):
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True,
                                            for_verify=True))  # locked, as django-otp locks a chosen one
            if len(devices) == 1:
                device = devices[0]
        return device

    def _update_form(self, user):
        """django-otp fills in the device list and keeps the password after a right password: here
        the page stays as it was, whatever was right."""

    def clean(self):
        try:
            return super().clean()
        except ValidationError as error:
            if self.user_cache is not None:  # the password was right; the code was not
                user_login_failed.send(
                    sender=__name__, credentials={"username": self.cleaned_data.get("username")}, request=self.request
                )
                self.user_cache = None
            raise self.get_invalid_login_error() from error


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
        return TwoFactorLoginForm if self.two_factor_required() else None

    @property
    def login_template(self):
        return OTPAdminSite.login_template if self.two_factor_required() else None

    def has_permission(self, request) -> bool:
        if self.two_factor_required():
            return super().has_permission(request)  # active staff *and* verified by a device
        return AdminSite.has_permission(self, request)

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every model admin, ours and third-party ones (users, lockouts, devices, periodic tasks), gets
        the guarded change list (nurture.admin.base.CheckedListAdmin): a date filter out of range in
        the query string is a plain 400, never a 500."""
        from django.contrib.admin import ModelAdmin

        from nurture.admin.base import CheckedListAdmin  # here: the engine's admin needs the app registry

        admin_class = admin_class or ModelAdmin
        if not issubclass(admin_class, CheckedListAdmin):
            admin_class = type(admin_class.__name__, (CheckedListAdmin, admin_class),
                               {"__module__": admin_class.__module__})
        return super().register(model_or_iterable, admin_class, **options)

    def admin_view(self, view, cacheable=False):
        """Every admin page (and the custom staff views, through nurture.admin.base.staff_view): a
        NUL byte anywhere in the query or form is a plain 400, before any view or query runs
        (PostgreSQL refuses it in a query, which would be a 500)."""
        inner = super().admin_view(view, cacheable)

        @wraps(view)
        def guarded(request, *args, **kwargs):
            if _has_nul(request):
                return HttpResponseBadRequest(
                    "The request contains a character that is not allowed (a NUL byte). Nothing was changed.",
                    content_type="text/plain; charset=utf-8",
                )
            return inner(request, *args, **kwargs)

        return guarded


def _has_nul(request) -> bool:
    for data in (request.GET, request.POST):
        for key, values in data.lists():
            if "\x00" in key or any(isinstance(v, str) and "\x00" in v for v in values):
                return True
    return False
