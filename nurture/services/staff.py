"""Staff accounts: enrolling a TOTP device for two-factor sign-in (config.admin_site)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


class EnrolError(Exception):
    """Why a device was not enrolled; the message is for the person running the command."""


def staff_totp_enrol(*, username: str, name: str = "authenticator", replace: bool = False) -> TOTPDevice:
    """A new, confirmed TOTP device for the staff user `username` (its config_url goes into their
    authenticator app). Refuses an unknown or non-staff user, and a user who already has a device
    unless `replace` (which removes their old devices in the same transaction)."""
    user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
    if user is None:
        raise EnrolError(f"There is no user {username!r}.")
    if not (user.is_staff and user.is_active):
        raise EnrolError(f"{username!r} is not an active staff user: only staff sign in to the admin.")
    with transaction.atomic():
        existing = TOTPDevice.objects.filter(user=user)
        if existing.exists():
            if not replace:
                raise EnrolError(
                    f"{username!r} already has {existing.count()} TOTP device(s). Run again with --replace to "
                    "remove them and enrol a new one (for a lost phone)."
                )
            existing.delete()
        return TOTPDevice.objects.create(user=user, name=name[:64] or "authenticator", confirmed=True)
