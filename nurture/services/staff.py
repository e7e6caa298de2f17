"""Staff accounts: the roles (groups) and what each may do, and enrolling a TOTP device for
two-factor sign-in (config.admin_site)."""
from __future__ import annotations

from django.apps import apps as live_apps
from django.apps.registry import Apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.db import transaction
from django_otp.plugins.otp_totp.models import TOTPDevice


CONTENT_EDITORS = "Content editors"
SUBSCRIBER_CARE = "Subscriber care"
AUDITORS = "Auditors"
CLINICAL_REVIEWERS = "Clinical reviewers"

# Each role with the permissions it needs and no more (docs/admin.md, "Who can see what").
ROLES: dict[str, tuple[str, ...]] = {
    # Articles, series, steps, previews with a sample reader, journeys, test-send to themselves, the
    # results page (aggregates only) and readers' comments (no identity). Never a subscriber's
    # address, name or stage.
    CONTENT_EDITORS: (
        "content.view_article", "content.add_article", "content.change_article", "content.view_articleversion",
        "nurture.view_series", "nurture.add_series", "nurture.change_series", "nurture.delete_series",
        "nurture.view_step", "nurture.add_step", "nurture.change_step", "nurture.delete_step",
        "nurture.view_steparticle", "nurture.add_steparticle", "nurture.change_steparticle",
        "nurture.delete_steparticle",
        "nurture.preview_emails", "nurture.view_results", "nurture.view_feedback_comments",
    ),
    # Subscribers (and everything held about one, exported), deliveries, suppressions, consent records,
    # replies, stage changes, pause/resume, requeue, erasure, previews as a real subscriber, the
    # sending overview, the complaint brake (seen and resumed).
    SUBSCRIBER_CARE: (
        "nurture.view_subscriber", "nurture.change_subscriber", "nurture.delete_subscriber",
        "nurture.export_subscriber",
        "nurture.view_consentrecord",
        "nurture.view_delivery", "nurture.change_delivery",
        "nurture.view_suppression", "nurture.add_suppression", "nurture.change_suppression",
        "nurture.delete_suppression",
        "nurture.view_providerevent", "nurture.handle_reply",
        "nurture.view_series", "nurture.view_step",
        "nurture.preview_emails", "nurture.preview_as_subscriber", "nurture.view_overview",
        "nurture.view_sendingbrake", "nurture.resume_sendingbrake",
    ),
    # Read-only: the audit trail (and its CSV), the sending overview's counts, the results page, the
    # complaint brake, login lockouts.
    AUDITORS: (
        "nurture.view_auditentry", "nurture.export_auditentry", "nurture.view_overview", "nurture.view_results",
        "nurture.view_sendingbrake",
        "axes.view_accessattempt", "axes.view_accesslog", "axes.view_accessfailurelog",
    ),
    # Read and approve articles, preview emails, the results page and readers' comments. Content
    # editors draft but do not approve.
    CLINICAL_REVIEWERS: (
        "content.view_article", "content.change_article", "content.approve_article", "content.view_articleversion",
        "nurture.view_series", "nurture.view_step", "nurture.preview_emails", "nurture.view_results",
        "nurture.view_feedback_comments",
    ),
}


def staff_roles_grant(*, apps: Apps | None = None) -> None:
    """Create each role in ROLES (by name, if missing) and give it its permissions; never takes one
    away. Idempotent. A migration passes its historical `apps`: the permissions, normally made after
    all migrations, are made first, and a permission whose model a later migration adds is left for
    that migration to grant by calling this again. Without `apps` (a test after a flush) every
    permission named must exist."""
    historical = apps is not None
    apps = apps if historical else live_apps
    if historical:
        for app_config in apps.get_app_configs():
            models_module = getattr(app_config, "models_module", None)
            app_config.models_module = models_module or True
            create_permissions(app_config, apps=apps, verbosity=0)
            app_config.models_module = models_module
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        wanted = []
        for perm in perms:
            app_label, codename = perm.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is None and not historical:
                raise LookupError(f"The role {name!r} names {perm}, which does not exist.")
            if permission is not None:
                wanted.append(permission)
        group, _created = Group.objects.get_or_create(name=name)
        group.permissions.add(*wanted)


def staff_roles_remove(*, apps: Apps) -> None:
    """Undo staff_roles_grant (a migration run backwards): the roles' groups go."""
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLES)).delete()


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
