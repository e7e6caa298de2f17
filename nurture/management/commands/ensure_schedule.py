from django.core.management import BaseCommand

from nurture.services.schedule import periodic_tasks_ensure


class Command(BaseCommand):
    help = (
        "Create the periodic tasks (planning, reconciliation, data retention, results summary) in the database "
        "schedule if missing."
    )

    def handle(self, *args, **options):
        changes = periodic_tasks_ensure()
        self.stdout.write("\n".join(changes) if changes else "Schedule already up to date.")
