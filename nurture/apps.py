from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
    verbose_name = "Nurture series"

    def ready(self):
        from nurture import receivers  # noqa: F401  (the provider-event signal receivers register on import)
        from nurture.emails import reading  # noqa: F401  (registers the layout's reading-level check)
