"""Plain language for the email layout's own strings (greeting, footer, buttons, the confirmation
and carer emails), checked like the articles (content.readability) in each language.

`manage.py check` warns (nurture.W014) when a language's layout strings read above the warning level;
tests keep them within it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from django.conf import settings
from django.core import checks
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation.template import templatize

from content import readability
from content.models import Language

_CALL = re.compile(r"\b(?:n?gettext|pgettext|npgettext)\((u?'(?:[^'\\]|\\.)*')")
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\{[^}]*\}\}")


def layout_strings() -> list[str]:
    """Every string marked for translation in templates/email/ (as makemessages extracts them)."""
    found: list[str] = []
    for path in sorted((Path(settings.BASE_DIR) / "templates" / "email").glob("*")):
        if path.suffix not in {".html", ".txt"}:
            continue
        for call in _CALL.finditer(templatize(path.read_text(encoding="utf-8"), origin=str(path))):
            text = ast.literal_eval(call.group(1))
            if text not in found:
                found.append(text)
    return found


def layout_reading_levels() -> dict[str, readability.Level]:
    """language -> the level of the layout's strings as shown in that language, read as one text
    (each string a sentence; placeholders such as a name or a count read as one short word)."""
    levels = {}
    for language in Language.values:
        with translation.override(language):
            sentences = []
            for text in layout_strings():
                shown = _PLACEHOLDER.sub("Ana", gettext(text)).strip()
                if len(shown.split()) < 3:  # labels ("Helpline") are not sentences
                    continue
                sentences.append(shown if shown[-1] in ".!?:" else shown + ".")
        levels[language] = readability.assess_text("\n".join(sentences), language=language)
    return levels


@checks.register()
def check_layout_reading_level(app_configs=None, **kwargs):
    return [
        checks.Warning(
            f"The email layout's own strings in '{language}' read at {level.describe()}.",
            hint="Make the wording in templates/email/ (and its translation in locale/) plainer.",
            id="nurture.W014",
        )
        for language, level in layout_reading_levels().items()
        if level.verdict != readability.OK
    ]
