"""`manage.py check --deploy`: published articles production will not send (nobody approved them) or
holds (past their review date). Warnings, so a deploy shows them without failing."""
from __future__ import annotations

from django.core import checks

SHOWN = 20  # names listed per warning; the count covers all


def _names(articles) -> str:
    names = [f"{a.language}/{a.slug}" for a in articles[:SHOWN]]
    more = len(articles) - len(names)
    return ", ".join(names) + (f" and {more} more" if more else "")


@checks.register(checks.Tags.security, deploy=True)
def articles_reviewed(app_configs=None, **kwargs):
    from content import selectors

    try:
        unreviewed, overdue = selectors.articles_unreviewed_or_overdue()
    except Exception:  # no database (yet), or none allowed here: a check never breaks `manage.py check`
        return []
    warnings = []
    if unreviewed:
        warnings.append(checks.Warning(
            f"{len(unreviewed)} published article(s) no named clinical reviewer approved: with DEBUG off they are "
            f"never sent, so steps carrying only them are skipped: {_names(unreviewed)}.",
            hint="After your clinicians reviewed them: python manage.py approve_articles --reviewer USERNAME "
            "[--language es] [SLUG ...] (README, 'Approving the starter library').",
            obj="content.Article", id="content.W001",
        ))
    if overdue:
        warnings.append(checks.Warning(
            f"{len(overdue)} published article(s) past their next review date: {_names(overdue)}.",
            hint="A clinical reviewer approves them again in the admin (Guide content > Articles); with "
            "NURTURE_REVIEW_OVERDUE=hold (the default) they are not sent until then.",
            obj="content.Article", id="content.W002",
        ))
    return warnings
