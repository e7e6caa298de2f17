"""`manage.py approve_articles --reviewer USERNAME [--language es] [--role ROLE] [SLUG ...]`: record
that a named clinical reviewer approved these articles after reviewing them outside the system
(all articles of the language, or all articles, when no slug is given). Each approval is in the
audit trail; the reviewer must be an active staff user with "approve articles"."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from content.models import Language
from content.services import ApprovalError, articles_approve


class Command(BaseCommand):
    help = "Approve articles for a named clinical reviewer who reviewed them outside the system (audited)."

    def add_arguments(self, parser):
        parser.add_argument("slugs", nargs="*", metavar="SLUG",
                            help="Articles to approve (default: all, or all of --language).")
        parser.add_argument("--reviewer", required=True, help="Username of the staff user who reviewed them.")
        parser.add_argument("--language", choices=Language.values, help="Only articles in this language.")
        parser.add_argument("--role", default="", help="The reviewer's role as readers see it, e.g. 'oncology nurse'.")

    def handle(self, *args, **options):
        user_model = get_user_model()
        user = user_model.objects.filter(**{user_model.USERNAME_FIELD: options["reviewer"]}).first()
        if user is None:
            raise CommandError(f"There is no user {options['reviewer']!r}.")
        try:
            versions = articles_approve(user=user, role=options["role"], language=options["language"],
                                        slugs=options["slugs"])
        except (ApprovalError, PermissionDenied) as error:
            raise CommandError(f"Nothing approved: {error}") from error
        if not versions:
            raise CommandError("Nothing approved: no articles match.")
        for version in versions:
            article = version.article
            self.stdout.write(
                f"approved {article.language}/{article.slug} v{version.version}, next review {version.next_review_on}")
        self.stdout.write(self.style.SUCCESS(f"Approved {len(versions)} article(s) for {options['reviewer']}."))
