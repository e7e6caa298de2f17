from django.apps import AppConfig


class NurtureConfig(AppConfig):
    name = "nurture"
    verbose_name = "Nurture series"

    def ready(self):
        from nurture import admin_articles, admin_webhooks, checks, receivers  # noqa: F401  (registers admin, system checks, signal receivers)
