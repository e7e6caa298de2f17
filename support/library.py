"""The default library (content/library/) loaded the way `manage.py load_content` loads it, for the
email tests, benchmark and screenshot script: the emails under test carry the real articles.

With `approved` (the default), a clinical reviewer then approves every article through the same
service as `manage.py approve_articles`, as an operator does before production sends anything
(with DEBUG off, unreviewed text is never sent)."""
from __future__ import annotations

from pathlib import Path

from content.services import articles_approve
from nurture.models import Series
from nurture.services.library import library_import

LIBRARY = Path(__file__).resolve().parent.parent / "content" / "library"
LANGUAGES = ("en", "es")
REVIEWER_USERNAME = "sample-reviewer"


def sample_reviewer():
    """A staff user in the "Clinical reviewers" role, named as readers would see them."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group, Permission

    from content.services import CLINICAL_REVIEWERS

    user, created = get_user_model().objects.get_or_create(
        username=REVIEWER_USERNAME, defaults={"first_name": "Dana", "last_name": "Reviewer", "is_staff": True,
                                              "email": "reviewer@example.org"},
    )
    if created:
        user.set_unusable_password()
        user.save()
        # The role as migration 0014 makes it (a transactional test's flush removes groups).
        group, _ = Group.objects.get_or_create(name=CLINICAL_REVIEWERS)
        group.permissions.add(Permission.objects.get(content_type__app_label="content", codename="approve_article"))
        user.groups.add(group)
    return get_user_model().objects.get(pk=user.pk)  # fresh permission cache


def load_default_library(*, approved: bool = True) -> list[Series]:
    library_import(library_dir=LIBRARY)
    if approved:
        articles_approve(user=sample_reviewer(), role="oncology nurse")
    return list(Series.objects.all())
