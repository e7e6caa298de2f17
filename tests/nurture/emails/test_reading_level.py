"""The email layout's own strings are checked for reading level like the articles."""
from __future__ import annotations

from nurture.emails.reading import check_layout_reading_level, layout_reading_levels, layout_strings


def test_layout_strings_are_found_and_include_the_care_wording():
    strings = layout_strings()
    assert "Pause these emails" in strings and "Stop these emails" in strings
    assert any("information about getting a second opinion" in s for s in strings)  # the carer's email


def test_the_layout_reads_within_the_warning_level_in_both_languages():
    levels = layout_reading_levels()
    assert set(levels) == {"en", "es"}
    assert {language: level.describe() for language, level in levels.items() if level.verdict != "ok"} == {}
    assert check_layout_reading_level() == []


def test_the_check_warns_when_the_layout_reads_above_the_level(settings):
    settings.NURTURE_READING_GRADE_WARN_EN = 1
    warnings = check_layout_reading_level()
    assert [w.id for w in warnings] == ["nurture.W014"] and "'en'" in warnings[0].msg
