from django.core.management import BaseCommand

from nurture.services.results import results_summarise


class Command(BaseCommand):
    help = (
        "Bring the results page's daily summary up to date (the recent days; every day since the first "
        "email when the summary is empty or with --rebuild). Beat runs the same hourly."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="recompute every day since the first email")

    def handle(self, *args, rebuild=False, **options):
        outcome = results_summarise(rebuild=rebuild)
        if outcome.first_day is None:
            self.stdout.write("Nothing sent yet: nothing to summarise.")
        else:
            self.stdout.write(
                f"Summarised {outcome.first_day} to {outcome.last_day}: {outcome.rows} rows (step x day).")
