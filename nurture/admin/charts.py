"""Charts for the results page as hand-built SVG: no JavaScript, no style attributes (the colours
are classes in static/nurture/results.css, which also has the dark-mode colours). Each chart is an
image with a <title> and <desc> (role="img"); the page puts its numbers in a table beside it."""
from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 560
LABEL_WIDTH = 210
VALUE_WIDTH = 56
ROW_HEIGHT = 26
BAR_HEIGHT = 18


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None  # None: not drawn (nothing to show, or too few people)
    shown: str  # the value as written beside the bar
    highlighted: bool = False


def _open(chart_id: str, title: str, desc: str, height: int) -> list[str]:
    return [
        f'<svg class="nurture-chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" aria-labelledby="{escape(chart_id)}-title {escape(chart_id)}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{escape(chart_id)}-title">{escape(title)}</title>',
        f'<desc id="{escape(chart_id)}-desc">{escape(desc)}</desc>',
    ]


def _short(label: str, limit: int = 27) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(*, chart_id: str, title: str, desc: str, bars: list[Bar]) -> SafeString:
    """Horizontal bars, one row each, scaled to the largest value; highlighted bars get their own class."""
    height = max(1, len(bars)) * ROW_HEIGHT + 10
    top = max((b.value for b in bars if b.value), default=0) or 1
    span = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    parts = _open(chart_id, title, desc, height)
    for i, bar in enumerate(bars):
        y = 5 + i * ROW_HEIGHT
        length = 0 if not bar.value else max(1, round(span * bar.value / top))
        klass = "chart-bar is-highlighted" if bar.highlighted else "chart-bar"
        parts.append(
            f'<text class="chart-label" x="{LABEL_WIDTH - 6}" y="{y + 14}" '
            f'text-anchor="end">{escape(_short(bar.label))}</text>'
        )
        if length:
            parts.append(
                f'<rect class="{klass}" x="{LABEL_WIDTH}" y="{y}" width="{length}" height="{BAR_HEIGHT}"></rect>')
        parts.append(
            f'<text class="chart-value" x="{LABEL_WIDTH + length + 4}" y="{y + 14}">{escape(bar.shown)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def stacked_columns(
    *, chart_id: str, title: str, desc: str, columns: list[str], layers: list[tuple[str, list[int | None]]]
) -> SafeString:
    """Vertical columns (e.g. weeks), each a stack of layers (e.g. stage and language), with a legend.
    A layer value of None (too few people to show) is left out of its column."""
    plot_top, plot_height, left = 10, 200, 50
    legend_rows = (len(layers) + 2) // 3
    height = plot_top + plot_height + 40 + legend_rows * 20
    totals = [sum(layer[1][c] or 0 for layer in layers) for c in range(len(columns))]
    top = max(totals, default=0) or 1
    step = (WIDTH - left - 10) / max(1, len(columns))
    width = max(2.0, step * 0.7)
    parts = _open(chart_id, title, desc, height)
    base = plot_top + plot_height
    parts.append(f'<line class="chart-axis" x1="{left}" y1="{base}" x2="{WIDTH - 10}" y2="{base}"></line>')
    parts.append(f'<text class="chart-value" x="{left - 4}" y="{plot_top + 10}" text-anchor="end">{top:,}</text>')
    parts.append(f'<text class="chart-value" x="{left - 4}" y="{base}" text-anchor="end">0</text>')
    label_every = max(1, round(len(columns) / 8))
    for c, column in enumerate(columns):
        x = left + c * step + (step - width) / 2
        y = base
        for index, (_name, values) in enumerate(layers):
            value = values[c] or 0
            if not value:
                continue
            h = plot_height * value / top
            y -= h
            parts.append(
                f'<rect class="chart-layer layer-{index % 6}" x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" '
                f'height="{h:.1f}"></rect>'
            )
        if c % label_every == 0:
            parts.append(
                f'<text class="chart-label" x="{x + width / 2:.1f}" y="{base + 16}" '
                f'text-anchor="middle">{escape(column)}</text>')
    for index, (name, _values) in enumerate(layers):
        lx = left + (index % 3) * 165
        ly = base + 30 + (index // 3) * 20
        parts.append(f'<rect class="chart-layer layer-{index % 6}" x="{lx}" y="{ly}" width="12" height="12"></rect>')
        parts.append(f'<text class="chart-label" x="{lx + 18}" y="{ly + 11}">{escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
