"""Shared admin bases: read-only model admins, actions that refuse tampered or oversized selections,
and the permission checks every staff page goes through (docs/admin.md, "Who can see what").

- `staff_view(permission)` wraps a custom staff view: the admin site's own sign-in rule (active
  staff, verified by a second factor when DEBUG is off), then the named permission, else a 403
  page that names it. A `BadQuery` raised inside becomes a plain 400 with its message.
- `require_permission(request, permission)` is the same check inside a view (e.g. previewing as a
  real subscriber needs one more permission than previewing with the sample reader).
- `permission_denied` is the site's 403 handler (config/urls.py): it names the missing permission,
  also for Django's own model admin pages, which refuse without saying which one.
"""
from __future__ import annotations

import re
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.exceptions import DisallowedModelAdminLookup
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.html import format_html

from nurture.models import Step


# Rows one admin action may touch: each subscriber goes through its service (a locked row each), and
# a larger "select all" would make a slow request. Staff repeat the action for the rest.
ACTION_LIMIT = 1000


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ViewOnlyAdmin(ReadOnlyAdmin):
    """Not even deleted in the admin (figures computed from other rows; the append-only audit trail)."""

    def has_delete_permission(self, request, obj=None):
        return False


class SafeActionIdsMixin:
    """A tampered action POST (an id that is not a number) gets a message, not a 500, and a
    "select all" larger than ACTION_LIMIT is refused before anything changes."""

    def response_action(self, request, queryset):
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if any(not (value.isascii() and value.isdigit()) for value in selected):
            self.message_user(request, "Some of the chosen rows are not valid ids. Nothing was changed.",
                              messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_action(request, queryset)

    def _within_limit(self, request, queryset) -> list[int] | None:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: ACTION_LIMIT + 1])
        if len(ids) > ACTION_LIMIT:
            self.message_user(
                request,
                f"Choose at most {ACTION_LIMIT:,} rows at a time (filter the list first). Nothing was changed.",
                messages.ERROR,
            )
            return None
        return ids


def delivery_preview_link(delivery_id: int):
    return format_html('<a href="{}">View as sent</a>', reverse("email_preview:delivery", args=[delivery_id]))


def step_label(step: Step) -> str:
    return f"#{step.position + 1}: {step.subject}"


# --- named permissions -------------------------------------------------------------------------

PREVIEW_EMAILS = "nurture.preview_emails"
PREVIEW_AS_SUBSCRIBER = "nurture.preview_as_subscriber"
VIEW_OVERVIEW = "nurture.view_overview"
VIEW_DELIVERY = "nurture.view_delivery"


class BadQuery(Exception):
    """Input a staff view cannot use (a malformed id or address): a 400 with this message."""


def permission_label(permission: str) -> str:
    """'nurture.view_delivery' -> '“nurture.view_delivery” (Can view delivery)'."""
    app_label, _dot, codename = permission.partition(".")
    name = (
        Permission.objects.filter(content_type__app_label=app_label, codename=codename).values_list("name",
                                                                                                    flat=True).first()
    )
    return f"“{permission}” ({name})" if name else f"“{permission}”"


def missing_permission(permission: str) -> PermissionDenied:
    return PermissionDenied(
        f"This page needs the permission {permission_label(permission)}, which your account does not have. "
        "Ask an administrator for the role that includes it (docs/admin.md, “Who can see what”)."
    )


def require_permission(request, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise missing_permission(permission)


def staff_view(permission: str):
    """Decorator for a custom staff view (see the module docstring)."""

    def decorator(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            require_permission(request, permission)
            try:
                return view(request, *args, **kwargs)
            except BadQuery as error:
                return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")

        # The site's own wrapper: sign-in (and second factor) first, NUL bytes refused, never cached.
        return admin.site.admin_view(checked)

    return decorator


_ADMIN_VIEW_ACTIONS = {
    "changelist": "view", "change": "view", "history": "view", "add": "add", "delete": "delete",
    "config": "view", "qrcode": "view",  # django-otp's device pages
}


def _model_admin_permission(request) -> str | None:
    """The permission a model admin page refused for, from its URL name (admin:<app>_<model>_<view>)."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.namespace != "admin" or not match.url_name:
        return None
    for model in admin.site._registry:
        prefix = f"{model._meta.app_label}_{model._meta.model_name}_"
        view = match.url_name.removeprefix(prefix)
        if view != match.url_name and view in _ADMIN_VIEW_ACTIONS:
            action = "change" if view == "change" and request.method == "POST" else _ADMIN_VIEW_ACTIONS[view]
            return f"{model._meta.app_label}.{action}_{model._meta.model_name}"
    return None


def permission_denied(request, exception=None):
    """The 403 page (handler403): what is missing, never a bare "Forbidden"."""
    message = str(exception or "")
    if not message:
        permission = _model_admin_permission(request)
        message = str(missing_permission(permission)) if permission else "You do not have permission to open this page."
    staff_side = request.path.startswith("/" + settings.DJANGO_ADMIN_PATH)
    template = "admin/403.html" if staff_side else "403.html"
    context = {**admin.site.each_context(request), "title": "Permission needed"} if staff_side else {}
    return render(request, template, {**context, "message": message}, status=403)


def audited_subscriber_ids(response, *, attribute: str = "pk") -> list[int]:
    """The subscriber ids on a changelist page that was narrowed to people (a search or a filter)."""
    context = getattr(response, "context_data", None) or {}
    changelist = context.get("cl")
    if changelist is None:
        return []
    return [getattr(row, attribute) for row in changelist.result_list]


# --- list pages: only the filters they declare, and no 500 from a query string ----------------------


class ListQueryRefused(Exception):
    """A list query string the admin does not offer or cannot read: a plain 400 with this message."""


_PARAMETER_NAME = re.compile(r"[A-Za-z0-9_]{1,60}")


def _named(parameter: str) -> str:
    # Name a parameter only when it is a plain field path: never echo what someone typed (an address).
    return f"“{parameter}”" if _PARAMETER_NAME.fullmatch(parameter) else "one of the parameters"


class CheckedChangeList(ChangeList):
    """Django's change list, with two guards (docs/security.md, "Staff lookups and small cells"):

    - a date-hierarchy value out of range (`?at__year=99999999999`, year 9999's "next year") or any
      other unreadable lookup is a 400 naming the parameter, never an OverflowError (a 500) or
      Django's redirect to a "Database error" page;
    - on an admin with `declared_filters_only`, any field lookup in the query string that is not one
      of the admin's own list filters, its date hierarchy or its `extra_list_lookups` is refused:
      Django would otherwise accept `?email=`, `?first_name=` or `?treatment_date__gte=` on any local
      field, and narrow a list to one person with no trace.
    """

    def get_filters(self, request):
        asked = set(self.get_filters_params())
        try:
            found = super().get_filters(request)
        except DisallowedModelAdminLookup as error:
            raise ListQueryRefused(f"This list cannot be filtered that way ({error}).") from None
        except (IncorrectLookupParameters, OverflowError, ValueError) as error:
            date_field = self.date_hierarchy or "date"
            raise ListQueryRefused(
                f"The {date_field} filter takes a year from 1 to 9998 with a real month and day "
                f"({type(error).__name__})."
            ) from None
        remaining = found[2]
        if getattr(self.model_admin, "declared_filters_only", False):
            extra = set(getattr(self.model_admin, "extra_list_lookups", ()))
            refused = sorted(key for key in remaining if key in asked and key not in extra)
            if refused:
                raise ListQueryRefused(
                    f"This list does not offer filtering by {_named(refused[0])}: use the filters beside the list "
                    "or the search box. Nothing was shown."
                )
        return found

    def get_queryset(self, request, exclude_parameters=None):
        try:
            return super().get_queryset(request, exclude_parameters)
        except IncorrectLookupParameters:
            raise ListQueryRefused(_UNUSABLE) from None

    def get_results(self, request):
        # A year lookup's bounds are computed only when the query runs (`?last_login__year=9…9`).
        try:
            return super().get_results(request)
        except (OverflowError, ValueError):
            raise ListQueryRefused(_UNUSABLE) from None


_UNUSABLE = "One of the filters has a value this list cannot use (a date out of range?). Nothing was shown."


class CheckedListAdmin:
    """Mixin for a ModelAdmin whose list uses CheckedChangeList (the admin site adds it to every model
    admin, ours and third-party ones: config.admin_site). `declared_filters_only = True` refuses lookups
    outside the admin's filters; `extra_list_lookups` names the few others it takes."""

    declared_filters_only = False
    extra_list_lookups: tuple[str, ...] = ()

    def get_changelist(self, request, **kwargs):
        return CheckedChangeList

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except ListQueryRefused as error:
            return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")


def list_narrowed(request) -> str | None:
    """How a list page was narrowed or reordered (a search, a filter, an ordering, a page), or None for
    the plain first page. A narrowed list can single a person out, so each person it shows is a look."""
    keys = set(request.GET) - {"_facets"}
    if not keys:
        return None
    if request.GET.get("q"):
        return "search"
    if keys <= {"o", "p", "all"}:
        return "ordering or page"
    return "filter"
