"""docs/content.md shows the coverage matrix as content/library/coverage.yaml and the series have it."""
from __future__ import annotations

from content.coverage import load_matrix, matrix_table
from content.parsing import read_library
from tests.content.seeds import LIBRARY, REPO


def test_the_documented_matrix_is_the_library_matrix():
    doc = (REPO / "docs" / "content.md").read_text(encoding="utf-8")
    documented = doc.split("<!-- coverage-matrix:start -->\n", 1)[1].split("<!-- coverage-matrix:end -->", 1)[0]
    assert documented == matrix_table(load_matrix(LIBRARY), read_library(LIBRARY)), "run: python -m content.coverage"


def test_the_table_names_each_point_and_who_receives_it():
    table = matrix_table(load_matrix(LIBRARY), read_library(LIBRARY))
    row = next(line for line in table.splitlines() if line.startswith("| Worried about waiting?"))
    assert "| 001:10 | time-to-decide | recently diagnosed |" in row
    assert "in treatment: Waiting to start treatment does not apply" in row
