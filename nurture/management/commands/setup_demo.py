"""`make run` set-up: migrate, load starter content and series, schedule, demo staff login.

`--show-login` only prints the demo staff login again: `make run` runs it a few seconds after the
services start (Procfile.dev, "login"), so it comes after their start-up banners, not above them."""
from __future__ import annotations

import secrets
from pathlib import Path

from django.conf import settings

from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError, call_command

from nurture.services.schedule import periodic_tasks_ensure

DEMO_USERNAME = "demo-staff"


def login_file() -> Path:
    """Where the local demo keeps its staff password, to show it again (var/, never committed)."""
    return settings.VAR_DIR / "demo-login.txt"


class Command(BaseCommand):
    help = "Prepare a local demo: migrate, load content and series, set up the schedule, create a demo staff login."

    def add_arguments(self, parser):
        parser.add_argument("--show-login", action="store_true", help="Only print the demo staff login (set up first).")

    def handle(self, *args, **options):
        if options["show_login"]:
            return self.show_login()
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
            User.objects.create_superuser(DEMO_USERNAME, "demo-staff@example.org", self.new_password())
        self.show_login()

    def new_password(self) -> str:
        password = secrets.token_urlsafe(12)
        path = login_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(password)
        return password

    def show_login(self) -> None:
        user = get_user_model().objects.filter(username=DEMO_USERNAME).first()
        if user is None:
            raise CommandError("There is no demo login yet: run `make run` (or manage.py setup_demo) first.")
        path = login_file()
        password = path.read_text().strip() if path.exists() else ""
        if not password:  # a login made before its password was kept: a fresh one, kept from now on
            password = self.new_password()
            user.set_password(password)
            user.save(update_fields=["password"])
        shown = (password if user.check_password(password)
                 else f"the one you set (manage.py changepassword {DEMO_USERNAME})")
        admin_url = f"{settings.SITE_URL.rstrip('/')}/{settings.DJANGO_ADMIN_PATH}"
        self.stdout.write(self.style.WARNING(
            "\nDemo staff login (this local demo only):\n"
            f"  {admin_url}  user: {DEMO_USERNAME}  password: {shown}\n"
            f"  Shown again with: .venv/bin/python manage.py setup_demo --show-login\n"
        ))
