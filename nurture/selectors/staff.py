"""Reads about staff: the roles that open a subscriber's record (named in the privacy notice), the
staff to alert when sending pauses itself, and a locked-out sign-in's latest failure. Addresses of
staff, never of subscribers."""
from __future__ import annotations

from datetime import datetime

from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Max, Q


def staff_roles_seeing_subscribers() -> list[str]:
    """The staff roles (groups) whose permissions open a subscriber's record: what the privacy
    notice names under "who can see it", read from the permissions themselves so it stays true."""
    return list(
        Group.objects.filter(permissions__content_type__app_label="nurture", permissions__codename="view_subscriber")
        .order_by("name").values_list("name", flat=True).distinct()
    )


def staff_addresses_with_permission(*, app_label: str, codename: str) -> list[str]:
    """The email addresses of active staff who hold the permission (their own or their role's;
    superusers hold every one), sorted, without duplicates."""
    has_perm = Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label) | Q(
        groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label)
    staff = get_user_model().objects.filter(Q(is_superuser=True) | has_perm, is_active=True,
                                            is_staff=True).exclude(email="")
    return sorted({user.email for user in staff})


def staff_sign_in_last_failed_at(*, username: str, address: str) -> datetime | None:
    """When this username last failed to sign in from this client address (django-axes' record)."""
    return AccessAttempt.objects.filter(username=username,
                                        ip_address=address).aggregate(latest=Max("attempt_time"))["latest"]
