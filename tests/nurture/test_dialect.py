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


@pytest.mark.parametrize("count", [0, 1, 3, 600])
def test_an_orm_filter_on_a_list_reads_the_rows_of_the_list_as_one_parameter_on_postgresql(count):
    """dialect.one_of: the rows whose field is one of the values (ids, or text such as mailboxes);
    on PostgreSQL one array parameter however long the list, elsewhere the ORM's IN."""
    from django.test.utils import CaptureQueriesContext

    from nurture.models import Suppression

    Suppression.objects.bulk_create(Suppression(email=f"s{i}@example.org", mailbox=f"s{i}@example.org")
                                    for i in range(1, 8))
    mailboxes = [f"s{i}@example.org" for i in range(1, count + 1)] + ["nobody@example.org"]
    ids = list(Suppression.objects.filter(mailbox__in=mailboxes).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        by_mailbox = set(Suppression.objects.filter(dialect.one_of("mailbox", mailboxes, kind="text"))
                         .values_list("mailbox", flat=True))
        by_id = set(Suppression.objects.filter(dialect.one_of("pk", ids)).values_list("pk", flat=True))
    assert by_mailbox == {f"s{i}@example.org" for i in range(1, min(count, 7) + 1)}
    assert by_id == set(ids) and len(ids) == min(count, 7)
    if dialect.is_postgresql():
        assert all("= ANY(" in q["sql"] and " IN (" not in q["sql"] for q in queries.captured_queries)
