from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
    verbose_name = "Nurture series"

    def ready(self):
        # System checks on the settings, and the provider-event signal receivers, register on import.
        from config import checks  # noqa: F401
        from nurture import receivers  # noqa: F401
