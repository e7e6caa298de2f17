"""Everything held about one person, as JSON: `manage.py subscriber_export EMAIL [--output FILE]`."""
import json

from django.core.management.base import BaseCommand, CommandError

from nurture.selectors.subscribers import subscriber_by_email
from nurture.services.exports import subscriber_export_by_staff


class Command(BaseCommand):
    help = "Export everything held about one subscriber (the same JSON as their own 'Download my data')."

    def add_arguments(self, parser):
        parser.add_argument("email", help="The subscriber's address (any case).")
        parser.add_argument("--output", "-o", help="Write to this file instead of standard output.")

    def handle(self, *args, email: str, output: str | None, **options):
        subscriber = subscriber_by_email(email=email)
        if subscriber is None:
            raise CommandError("No subscriber with that address.")
        data = subscriber_export_by_staff(user=None, subscriber_id=subscriber.pk, channel="command")
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
            self.stderr.write(f"Written to {output}.")
        else:
            self.stdout.write(text, ending="")
