"""Build the default series from content/library/ for tests, without the content app's importer.

Front matter is read with PyYAML and the body rendered with Markdown + nh3, the same libraries the
content pipeline uses, so the emails under test carry the real articles of the guide.
"""
from __future__ import annotations

from pathlib import Path

import markdown
import nh3
import yaml

from content.models import Article
from nurture.models import Series, Step, StepArticle

LIBRARY = Path(__file__).resolve().parent.parent / "content" / "library"
LANGUAGES = ("en", "es")


def _read(path: Path) -> tuple[dict, str]:
    text = path.read_text(encoding="utf-8")
    _, front, body = text.split("---", 2)
    return yaml.safe_load(front), body.strip()


def body_to_html(body_markdown: str) -> str:
    return nh3.clean(markdown.markdown(body_markdown, extensions=["sane_lists"]))


def load_default_library() -> list[Series]:
    """Create every Article (published) and the default Series/Steps in both languages."""
    created = []
    for language in LANGUAGES:
        folder = LIBRARY / language
        articles = {}
        for path in sorted(folder.glob("*.md")):
            meta, body = _read(path)
            articles[meta["slug"]] = Article.objects.create(
                slug=meta["slug"], language=language, title=meta["title"], stages=meta.get("stages", []),
                source_section=meta.get("source_section", ""), body_markdown=body, body_html=body_to_html(body),
                status=Article.Status.PUBLISHED,
            )
        plan = yaml.safe_load((folder / "_series.yaml").read_text(encoding="utf-8"))
        for stage, spec in plan.items():
            series = Series.objects.create(stage=stage, language=language, name=spec["name"])
            for position, step_spec in enumerate(spec["steps"]):
                step = Step.objects.create(
                    series=series, position=position, delay_days=step_spec["delay_days"], subject=step_spec["subject"]
                )
                for order, slug in enumerate(step_spec["articles"]):
                    StepArticle.objects.create(step=step, article=articles[slug], order=order)
            created.append(series)
    return created
