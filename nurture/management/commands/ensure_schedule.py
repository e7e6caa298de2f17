from django.core.management import BaseCommand

from nurture.services.schedule import ensure_periodic_tasks


class Command(BaseCommand):
    help = "Create the periodic tasks (planning, reconciliation, data retention) in the database schedule if missing."

    def handle(self, *args, **options):
        changes = ensure_periodic_tasks()
        self.stdout.write("\n".join(changes) if changes else "Schedule already up to date.")
