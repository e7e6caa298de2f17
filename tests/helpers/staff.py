"""Staff logins for tests: users in a role, signed in with a verified two-factor device, as the
admin requires with DEBUG off (config.admin_site)."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from nurture.services.staff import (  # noqa: F401 - the role names, for tests to import from here
    AUDITORS,
    CLINICAL_REVIEWERS,
    CONTENT_EDITORS,
    ROLES,
    SUBSCRIBER_CARE,
    staff_roles_grant,
)

PASSWORD = "pw-long-enough-for-staff"


def ensure_roles() -> None:
    """The roles as the migrations create them (staff_roles_grant): a transactional test's flush removes them."""
    if Group.objects.filter(name__in=list(ROLES)).count() < len(ROLES):
        staff_roles_grant()


def staff_user(username: str, *groups: str, superuser: bool = False, email: str = ""):
    """A staff user in the named roles (groups: staff_roles_grant), with a password."""
    if groups:
        ensure_roles()
    User = get_user_model()
    if superuser:
        user = User.objects.create_superuser(username, email or f"{username}@staff.example.org", PASSWORD)
    else:
        user = User.objects.create_user(username, email or f"{username}@staff.example.org", PASSWORD, is_staff=True)
    if groups:
        user.groups.add(*Group.objects.filter(name__in=groups))
        assert user.groups.count() == len(groups), f"missing group among {groups}"
    return user


def totp_device(user) -> TOTPDevice:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test phone", confirmed=True
    )


def verified_login(client, user):
    """Log `client` in as `user` as if they had signed in with their password and a TOTP code."""
    device = totp_device(user)
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


def current_code(device: TOTPDevice) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):0{device.digits}d}"


def signed_in_with_permissions(client, *perms: str, username: str = "carol"):
    """A staff user holding exactly these permissions ("app.codename"), signed in with two factors."""
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, password="x", is_staff=True)
    for perm in perms:
        app, codename = perm.split(".")
        user.user_permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    verified_login(client, user)
    return user
