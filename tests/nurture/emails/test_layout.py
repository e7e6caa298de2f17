"""The layout's colours are readable: WCAG contrast of at least 4.5:1 for every text/background pair."""
from __future__ import annotations

import re

from nurture.emails.layout import CONTRAST_PAIRS, PALETTE, TEMPLATE_DIR


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_helper_knows_the_extremes():
    assert round(contrast("#000000", "#ffffff"), 1) == 21.0
    assert contrast("#777777", "#ffffff") < 4.5


def test_every_text_background_pair_reaches_4_5_to_1():
    low = {f"{t} on {b}": round(contrast(PALETTE[t], PALETTE[b]), 2) for t, b in CONTRAST_PAIRS}
    assert {pair: ratio for pair, ratio in low.items() if ratio < 4.5} == {}
    # The button: card-coloured text on the accent, in both schemes.
    assert contrast(PALETTE["card"], PALETTE["accent"]) >= 4.5
    assert contrast(PALETTE["dark_card"], PALETTE["dark_accent"]) >= 4.5


def test_layout_uses_only_palette_colours():
    for path in TEMPLATE_DIR.glob("*.*"):
        source = path.read_text(encoding="utf-8")
        assert re.findall(r"#[0-9a-fA-F]{3,6}\b", source) == [], path.name  # every colour comes from PALETTE
        assert "style=" not in source, path.name  # CSS lives in the <style> block; css-inline applies it
