"""`manage.py load_content`: import the guide's articles and default series from content/library/."""
from __future__ import annotations

from pathlib import Path

from django.core.management import BaseCommand, CommandError

from content.parsing import LibraryError
from content.services import default_library_dir
from nurture.services.library import ImportReport, library_import


class Command(BaseCommand):
    help = (
        "Import the guide's articles and default series from the library directory (idempotent). "
        "Articles or series staff changed in admin are kept unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument("--library-dir", type=Path, default=None, help=f"Default: {default_library_dir()}")
        parser.add_argument("--force", action="store_true", help="Replace staff edits with the files' content.")

    def handle(self, *args, library_dir: Path | None, force: bool, **options):
        try:
            report = library_import(library_dir=library_dir, force=force)
        except LibraryError as exc:
            count = len(exc.problems)
            raise CommandError(
                f"Nothing imported: {count} problem{'s' if count != 1 else ''} in the library.\n{exc}"
            ) from None
        self._print(report)

    def _print(self, report: ImportReport) -> None:
        articles, series = report.articles, report.series
        kinds = (("article", articles), ("series", series))
        for kind, changes in kinds:
            for label in changes.created:
                self.stdout.write(f"created {kind} {label}")
            for label in changes.updated:
                self.stdout.write(f"updated {kind} {label}")
            for label in changes.replaced:
                self.stdout.write(self.style.WARNING(f"replaced staff edits to {kind} {label} with its file (--force)"))
        for kind, changes in kinds:
            for label in changes.kept:
                self.stdout.write(self.style.WARNING(
                    f"kept staff edits to {kind} {label}: its file changed too; run with --force to replace them"
                ))
        for warning in report.reading_warnings:
            self.stdout.write(self.style.WARNING(warning))
        for label in report.steps_kept_with_deliveries:
            self.stdout.write(self.style.WARNING(
                f"kept {label}: no longer in the file, but it has deliveries; remove its articles in admin if it "
                "should stop"
            ))
        if not report.changed:
            self.stdout.write(
                f"No changes: {report.articles_total} articles, {report.series_total} series already up to date"
            )
            return
        self.stdout.write(self.style.SUCCESS(
            f"Imported: {len(articles.created)} articles created, {len(articles.updated)} updated, "
            f"{len(articles.replaced)} replaced; {len(series.created)} series created, "
            f"{len(series.updated)} updated, {len(series.replaced)} replaced "
            f"(library: {report.articles_total} articles, {report.series_total} series)"
        ))
