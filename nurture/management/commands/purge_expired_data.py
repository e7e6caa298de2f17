from django.core.management import BaseCommand

from nurture.services.retention import expired_data_purge


class Command(BaseCommand):
    help = (
        "Delete data past its retention period: unconfirmed sign-ups, people who left or were suppressed "
        "long ago (their suppression marker stays), old provider webhook events. Beat runs the same daily."
    )

    def handle(self, *args, **options):
        result = expired_data_purge()
        for name, count in result.__dict__.items():
            self.stdout.write(f"{name.replace('_', ' ')}: {count} deleted")
