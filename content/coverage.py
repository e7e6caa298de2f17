"""The coverage matrix (content/library/coverage.yaml) as the table in docs/content.md.

Each point of the guide -> the articles that carry it -> the stages whose series send it (from the English
series; the Spanish ones have the same shape, tests/content/test_coverage.py), with the reason where a stage
goes without it. `python -m content.coverage` prints the table; a test fails when docs/content.md differs.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:  # run as a script, Django is set up first (below)
    from content.parsing import Library

COVERAGE_FILE = "coverage.yaml"
STAGE_WORDS = {"recently_diagnosed": "recently diagnosed", "in_treatment": "in treatment",
               "in_remission": "in remission"}


def load_matrix(library_dir: Path) -> dict:
    return yaml.safe_load((Path(library_dir) / COVERAGE_FILE).read_text(encoding="utf-8"))


def matrix_table(matrix: dict, library: "Library", *, language: str = "en") -> str:
    sent = {s.stage: {slug for step in s.steps for slug in step.article_slugs} for s in library.series
            if s.language == language}
    lines = ["| point of the guide | seed line | articles | stages that receive it | left out, and why |",
             "|---|---|---|---|---|"]
    for point in matrix["points"]:
        stages = [STAGE_WORDS[stage] for stage in STAGE_WORDS if set(point["articles"]) & sent.get(stage, set())]
        left_out = "; ".join(f"{STAGE_WORDS[stage]}: {reason}"
                             for stage, reason in (point.get("left_out") or {}).items())
        lines.append(
            f"| {point['label']} | {point['seed']} | {', '.join(point['articles'])} | {', '.join(stages)} | {left_out} "
            "|")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import django

    django.setup()
    from content.parsing import read_library
    from content.services import default_library_dir

    library_dir = default_library_dir()
    print(matrix_table(load_matrix(library_dir), read_library(library_dir)), end="")
