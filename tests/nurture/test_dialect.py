"""nurture/dialect.py's tables of rows and id lists read the same on both vendors; on PostgreSQL a
statement keeps a few parameters however many rows it carries (psycopg parses it once)."""
import pytest
from django.db import connection

from nurture import dialect

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("count", [0, 1, 3, 200])
def test_a_table_of_rows_reads_back_as_given(count):
    rows = [(i, f"<m{i}@example.org>", i % 7) for i in range(1, count + 1)]
    sql, params = dialect.rows_table(rows, types=("bigint", "text", "integer"))
    among, id_params = dialect.in_ids("v.column1", [i for i in range(1, count + 1) if i % 2])
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT v.column1, v.column2, v.column3 FROM {sql} AS v WHERE {among} ORDER BY v.column1",
                       [*params, *id_params])
        assert [tuple(row) for row in cursor.fetchall()] == [row for row in rows if row[0] % 2]
    if dialect.is_postgresql():
        assert len(params) == 3 and len(id_params) == 1  # one array per column, whatever the rows
    else:
        assert len(params) == 3 * count
