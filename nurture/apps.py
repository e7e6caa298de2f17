from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
    verbose_name = "Nurture series"

    def ready(self):
        from nurture import checks  # noqa: F401  (registers system checks)
