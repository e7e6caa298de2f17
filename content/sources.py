"""The guide the library is drawn from: its title, author, revision date and sections, in each reader's language.

One home for the credit every email, web version and guide page shows: the guide's title, the
organisation that wrote it and its revision date, with the copyright note of the revision's closing lines.
The section names are the older text's headings (seed 000; the revision, 001, kept the text but lost its
headings), so an article's `source_section` must be one or more of them, separated by "; ".
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import formats, translation

# The guide's revision the library follows (seed 001, line 29).
REVISED = dt.date(2025, 7, 31)

# The guide's section headings, as the seed prints them, with the Spanish a reader sees.
SECTIONS: dict[str, str] = {
    "Seeking a Second Opinion": "Cómo buscar una segunda opinión",
    "Why seek a second opinion": "Por qué buscar una segunda opinión",
    "Remembering what your doctor says": "Cómo recordar lo que dice su médico",
    "How to talk to your doctor about getting a second opinion": "Cómo hablar con su médico sobre una segunda opinión",
    "The second opinion process: what to expect": "El proceso de la segunda opinión: qué esperar",
    "Deciding where to go for a second opinion": "Cómo decidir adónde ir para una segunda opinión",
    "Making sense of the second opinion": "Cómo entender la segunda opinión",
}


@dataclass(frozen=True)
class GuideCredit:
    title: str            # the guide's title in the reader's language
    original_title: str   # the title as published (English), for Spanish readers
    organisation: str
    language: str         # the reader's language: the revision date is written in its convention
    copyright: str
    based_on: str         # "{title} {original_title} {organisation} {revised}" filled in by based_on_line
    section_label: tuple[str, str]  # (one section, several sections)
    unreviewed: str       # shown on a page whose text no qualified person has reviewed yet
    guide_name: str       # the pages' own heading: our notes drawn from the guide

    @property
    def revised(self) -> str:
        """The revision date as the reader's language writes it: "31 July 2025", "31 de julio de 2025"."""
        with translation.override(self.language):
            return formats.date_format(REVISED, "DATE_FORMAT")

    def based_on_line(self, sections: list[str] | None = None) -> str:
        """The credit sentence, with the cited sections when given."""
        line = self.based_on.format(title=self.title, original_title=self.original_title,
                                    organisation=self.organisation, revised=self.revised)
        if sections:
            label = self.section_label[0] if len(sections) == 1 else self.section_label[1]
            line += f" {label}: {'; '.join(sections)}."
        return line


CREDITS: dict[str, GuideCredit] = {
    "en": GuideCredit(
        title="Seeking a Second Opinion",
        original_title="Seeking a Second Opinion",
        organisation="American Cancer Society",
        language="en",
        copyright=("The guide is copyrighted material of the American Cancer Society; these notes put its points "
                   "in our own words."),
        based_on="Based on the guide “{title}” by the {organisation}, last revised {revised}.",
        section_label=("Section", "Sections"),
        unreviewed="Not yet reviewed: no qualified health professional has reviewed this text yet.",
        guide_name="Second opinion guide",
    ),
    "es": GuideCredit(
        title="Cómo buscar una segunda opinión",
        original_title="Seeking a Second Opinion",
        organisation="American Cancer Society (Sociedad Americana Contra El Cáncer)",
        language="es",
        copyright=("La guía es material protegido por derechos de autor de la American Cancer Society; estas notas "
                   "explican sus puntos con nuestras propias palabras."),
        based_on=("Basado en la guía en inglés «{original_title}» ({title}), de la {organisation}, revisada por "
                  "última vez el {revised}."),
        section_label=("Sección", "Secciones"),
        unreviewed=(
            "Pendiente de revisión: ningún profesional de la salud calificado ha revisado todavía este texto, ni una "
            "persona calificada en traducción médica su traducción."
        ),
        guide_name="Guía sobre la segunda opinión",
    ),
}


def guide_credit(*, language: str) -> GuideCredit:
    return CREDITS.get(language, CREDITS["en"])


def source_sections(source_section: str) -> list[str]:
    """The section names an article cites, in the guide's own (English) wording."""
    return [part.strip() for part in (source_section or "").split(";") if part.strip()]


def unknown_sections(source_section: str) -> list[str]:
    return [name for name in source_sections(source_section) if name not in SECTIONS]


def section_titles(*, source_section: str, language: str) -> list[str]:
    """The cited sections as a reader of `language` should see them (a name we do not know stays as written)."""
    names = source_sections(source_section)
    if language == "es":
        return [SECTIONS.get(name, name) for name in names]
    return names
