"""The local demo (`make run`) runs on SQLite, which the rest of the suite never does (it runs on
PostgreSQL when it answers). The claim is raw SQL: its stamp must be written as the ORM writes
datetimes there, or the re-check (`sending_started_at=stamp`) finds nothing and every series email
stays in `sending` for ever, sending nothing. Run in a subprocess on a fresh SQLite database."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent("""
    import django
    django.setup()
    from django.core.management import call_command
    from django.db import connection
    call_command("migrate", verbosity=0)
    assert connection.vendor == "sqlite", connection.vendor
    from nurture.models import Delivery
    from nurture.services import planning
    from nurture import sending
    from tests.helpers.scheduler import active_subscriber, series
    active_subscriber("demo@example.org", series("in_treatment", [(0, ["first-article"])]))
    assert planning.deliveries_plan_due().planned == 1
    [pk] = Delivery.objects.values_list("pk", flat=True)
    print("counts", dict(sending.deliveries_send(delivery_ids=[pk]).counts))
    print("status", Delivery.objects.get(pk=pk).status)
""")


def test_a_series_email_is_sent_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "NURTURE_", "CELERY_", "EMAIL_", "DATABASE_", "CACHE_"))}
    env.update({
        "DJANGO_SETTINGS_MODULE": "config.settings", "DJANGO_DEBUG": "1", "PYTHONPATH": str(ROOT),
        "NURTURE_VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
        "NURTURE_SEND_WINDOW_START_HOUR": "0", "NURTURE_SEND_WINDOW_END_HOUR": "24",
    })
    run = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "counts {'sent': 1}" in run.stdout, run.stdout + run.stderr[-3000:]
    assert "status sent" in run.stdout, run.stdout
