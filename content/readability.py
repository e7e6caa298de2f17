"""Reading level of article bodies and of the email layout's own strings (plain language, checked).

English: Flesch-Kincaid grade (lower is easier). Spanish: Fernández-Huerta reading ease (higher is
easier). Measured with textstat (pinned to a version whose syllable data ships with the package, so
nothing is downloaded at run time) on the prose only: the body without front matter (articles in the
database never carry it), headings, link targets or list markers.

`assess()` answers one verdict for a text: ok, warn (above the setting's warning level) or block (past
the hard ceiling). The import (`load_content`) and the admin both ask it; publishing past the ceiling
needs a reviewer's override with a reason (content.services).
"""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from django.conf import settings

OK, WARN, BLOCK = "ok", "warn", "block"

_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s.*$|^.*\n(?:=+|-+)\s*$", re.M)
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BARE_URL = re.compile(r"<?(?:https?://|mailto:)\S+>?")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+", re.M)
_EMPHASIS = re.compile(r"[*_`>]+")
_TAG = re.compile(r"<[^>]+>")

# Below this many words the formulas say nothing useful (one long word makes a "grade 13" line):
# such a text is reported but never warned about or blocked.
MIN_WORDS = 20

# textstat keeps its language in module state; one measurement at a time.
_lock = threading.Lock()


def prose(markdown_text: str) -> str:
    """The sentences a reader reads: front matter, headings, link targets and markup removed.
    A list item without a full stop is its own sentence (it is read as one)."""
    text = markdown_text.replace("\r\n", "\n")
    text = _FRONT_MATTER.sub("", text)
    text = _HEADING.sub("", text)
    text = _LINK.sub(r"\1", text)
    text = _BARE_URL.sub("", text)
    text = _TAG.sub("", text)
    lines = []
    for line in text.split("\n"):
        is_item = bool(_LIST_MARKER.match(line))
        line = _EMPHASIS.sub("", _LIST_MARKER.sub("", line)).strip()
        if is_item and line and line[-1] not in ".!?:;":
            line += "."
        lines.append(line)
    return re.sub(r"\n{2,}", "\n\n", "\n".join(lines)).strip()


@dataclass(frozen=True)
class Level:
    language: str
    score: float  # en: Flesch-Kincaid grade; es: Fernández-Huerta ease
    measure: str
    verdict: str  # ok / warn / block
    warn_at: float
    block_at: float

    @property
    def higher_is_harder(self) -> bool:
        return self.language != "es"

    def describe(self) -> str:
        if self.language == "es":
            return (
                f"{self.measure} {self.score:.0f} (warning below {self.warn_at:.0f}, blocked below "
                f"{self.block_at:.0f})"
            )
        return f"{self.measure} {self.score:.1f} (warning above {self.warn_at:g}, blocked above {self.block_at:g})"


def _score(text: str, language: str) -> float:
    import textstat

    with _lock:
        if language == "es":
            textstat.set_lang("es")
            try:
                return float(textstat.fernandez_huerta(text))
            finally:
                textstat.set_lang("en_US")
        textstat.set_lang("en_US")
        return float(textstat.flesch_kincaid_grade(text))


def thresholds(language: str) -> tuple[float, float]:
    """(warning level, hard ceiling) for a language, from the settings."""
    if language == "es":
        return settings.NURTURE_READING_EASE_WARN_ES, settings.NURTURE_READING_EASE_BLOCK_ES
    return settings.NURTURE_READING_GRADE_WARN_EN, settings.NURTURE_READING_GRADE_BLOCK_EN


def assess_text(text: str, *, language: str) -> Level:
    """The level of plain text (already prose)."""
    warn_at, block_at = thresholds(language)
    score = round(_score(text, language), 1) if text.strip() else 0.0
    if language == "es":
        measure = "Fernández-Huerta"
        verdict = BLOCK if score < block_at else WARN if score < warn_at else OK
    else:
        measure = "Flesch-Kincaid grade"
        verdict = BLOCK if score > block_at else WARN if score > warn_at else OK
    if len(text.split()) < MIN_WORDS:
        verdict = OK
    return Level(language=language, score=score, measure=measure, verdict=verdict, warn_at=warn_at, block_at=block_at)


def assess(markdown_text: str, *, language: str) -> Level:
    """The level of an article body (Markdown, with or without front matter)."""
    return assess_text(prose(markdown_text), language=language)


def publish_problem(*, body_markdown: str, language: str, status: str, override: str) -> str | None:
    """Why this article may not be published as it stands (past the hard ceiling with no reviewer's
    override reason), or None. Drafts and articles in review are never blocked: only publishing is."""
    from content.models import Article

    if status != Article.Status.PUBLISHED or (override or "").strip():
        return None
    level = assess(body_markdown, language=language)
    if level.verdict != BLOCK:
        return None
    return (
        f"Reading level {level.describe()}: too hard to publish. Make it plainer, or, as the reviewer, "
        "give the reason in 'Reading level override reason'."
    )
