"""Validators for what staff type. Subject lines show on lock screens and in shared inboxes,
so they must not name a diagnosis, a condition or the reader's stage (DESIGN.md, health data)."""
from __future__ import annotations

import re
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Word stems, English and Spanish, compared without accents or case. A stem matches at the start
# of a word ("diagnos" catches diagnosis, diagnosed, diagnóstico, diagnosticada).
DIAGNOSIS_STEMS = (
    # the illness and its kinds
    "cancer", "tumor", "tumour", "carcinom", "lymphom", "linfoma", "leukaemi", "leukemi", "leucemi",
    "melanom", "sarcom", "myelom", "mielom", "neoplas", "malignan", "maligno", "maligna", "metasta",
    "oncolog", "glioblastom", "mesoteliom", "mesotheliom",
    # the stage a reader is in (the labels of content.models.Stage, in both languages)
    "diagnos", "treatment", "tratamiento", "remission", "remision", "relapse", "recaida", "recurrence",
    "recurrencia", "terminal", "palliative", "paliativ",
    # treatments that name the illness
    "chemo", "quimio", "radiotherap", "radioterap", "radiation therapy", "radiacion", "mastectom",
)
_PATTERN = re.compile(r"\b(" + "|".join(re.escape(stem) for stem in DIAGNOSIS_STEMS) + r")", re.I)


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def diagnosis_words_in(text: str) -> list[str]:
    """The words of `text` that name a diagnosis or stage (empty when none do)."""
    folded = _fold(text)
    found = []
    for match in _PATTERN.finditer(folded):
        end = match.end()
        while end < len(folded) and folded[end].isalnum():
            end += 1
        found.append(folded[match.start() : end])
    return found


def validate_subject_has_no_diagnosis(value: str) -> None:
    found = diagnosis_words_in(value or "")
    if found:
        raise ValidationError(
            _(
                "Subject lines are seen on lock screens and by anyone near the inbox, so they must not "
                "name a diagnosis, a treatment or the reader's stage. Please remove: %(words)s."
            ),
            params={"words": ", ".join(dict.fromkeys(found))},
            code="subject_names_diagnosis",
        )
