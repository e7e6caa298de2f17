"""`make run` set-up: migrate, load starter content and series, schedule, demo staff login."""
from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, call_command

from nurture.services.schedule import periodic_tasks_ensure

DEMO_USERNAME = "demo-staff"


class Command(BaseCommand):
    help = "Prepare a local demo: migrate, load content and series, set up the schedule, create a demo staff login."

    def handle(self, *args, **options):
        broker_options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        for folder in (broker_options.get("data_folder_in"), broker_options.get("control_folder"),
                       settings.NURTURE_OUTBOX_DIR):
            if folder:
                Path(folder).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        call_command("load_content", stdout=self.stdout)
        for change in periodic_tasks_ensure():
            self.stdout.write(f"schedule: {change}")
        User = get_user_model()
        if not User.objects.filter(username=DEMO_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser(DEMO_USERNAME, "demo-staff@example.org", password)
            self.stdout.write(self.style.WARNING(
                "\nDemo staff login (shown once, for this local demo only):\n"
                f"  http://127.0.0.1:8000/{settings.DJANGO_ADMIN_PATH}  user: {DEMO_USERNAME}  password: {password}\n"
                f"  Forgot it? .venv/bin/python manage.py changepassword {DEMO_USERNAME}\n"
            ))
