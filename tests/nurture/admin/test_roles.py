"""The staff roles as the migrations leave them (staff_roles_grant): each group holds exactly the
permissions its definition names, and granting again changes nothing."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from nurture.services.staff import ROLES, staff_roles_grant

pytestmark = pytest.mark.django_db


def _held() -> dict[str, set[str]]:
    return {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}
        for group in Group.objects.filter(name__in=list(ROLES))
    }


def test_the_migrated_roles_hold_exactly_what_their_definitions_name():
    assert _held() == {name: set(perms) for name, perms in ROLES.items()}


def test_granting_again_after_the_groups_are_gone_gives_the_same_roles():
    before = _held()
    Group.objects.filter(name__in=list(ROLES)).delete()
    staff_roles_grant()
    staff_roles_grant()  # idempotent
    assert _held() == before


def test_a_role_naming_a_permission_that_does_not_exist_is_refused(monkeypatch):
    monkeypatch.setitem(ROLES, "Auditors", ("nurture.view_nothing_at_all",))
    with pytest.raises(LookupError, match="view_nothing_at_all"):
        staff_roles_grant()
