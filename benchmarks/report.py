"""The table `make bench` prints and writes between the markers of docs/benchmarks.md.

    .venv/bin/python -m benchmarks.report var/bench/<time>/results.json [--docs docs/benchmarks.md]

rewrites the docs from a saved run without running anything."""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    key: str  # stable id (the smoke test checks every one is there)
    what: str
    engine: float | None = None
    post_office: float | None = None
    unit: str = ""
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.engine is None or not self.post_office:
            return None
        return self.engine / self.post_office



def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return ""
    if unit == "x":
        return f"{value:.2f}"
    if unit in ("emails/s", "MiB", "ms/s"):
        return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value < 10 else f"{value:.1f}"


def table(rows: list[Row]) -> str:
    header = ["what", "engine", "post-office", "engine / post-office", "unit", "target", "met", "note"]
    lines = [header]
    for row in rows:
        ratio = row.ratio
        lines.append([
            row.what, fmt(row.engine, row.unit), fmt(row.post_office, row.unit), f"{ratio:.2f}x" if ratio else "",
            row.unit, row.target, {True: "yes", False: "NO", None: ""}[row.met], row.note,
        ])
    return "\n".join("| " + " | ".join(cells) + " |" if i else "| " + " | ".join(cells) + " |\n|" + "---|" * len(cells)
                     for i, cells in enumerate(lines))


def write_docs(path: Path, *, rows: list[Row], meta: dict) -> None:
    """Rewrite the generated part of docs/benchmarks.md (between the markers); the rest is prose."""
    begin, end = "<!-- bench:begin (written by benchmarks/run_all.py; do not edit by hand) -->", "<!-- bench:end -->"
    m = meta["machine"]
    generated = "\n".join([
        begin,
        f"Run of {meta['date']} ({meta['size']}): `{meta['command']}`",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"PostgreSQL {meta['services']['postgresql']}, Redis {meta['services']['redis']}; "
        f"django-post-office {meta['post_office_version']} ({meta['po_processes']} processes x {meta['po_threads']} threads); "
        f"engine: {meta['workers']} worker processes, {meta.get('concurrency', '?')} calls in flight each, send batches of up to "
        f"{meta.get('send_batch', '?')}; email body {meta['body_kib']:.1f} KiB (text + HTML).",
        "",
        table(rows),
        "",
        f"Raw figures and EXPLAIN plans: `{meta['out']}` (results.json, explain-*.txt).",
        end,
    ])
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + begin + "\n" + end + "\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + generated + tail
    else:
        text = text.rstrip() + "\n\n" + generated + "\n"
    path.write_text(text)



def rows_from(results: dict) -> list[Row]:
    fields = set(Row.__dataclass_fields__)
    return [Row(**{k: v for k, v in row.items() if k in fields}) for row in results["rows"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="a run's results.json")
    parser.add_argument("--docs", default=str(ROOT / "docs" / "benchmarks.md"))
    args = parser.parse_args(argv)
    saved = json.loads(Path(args.results).read_text())
    rows = rows_from(saved)
    write_docs(Path(args.docs), rows=rows, meta=saved["meta"])
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
