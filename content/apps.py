from django.apps import AppConfig


class ContentConfig(AppConfig):
    name = "content"
    verbose_name = "Guide content"

    def ready(self):
        from content import checks  # noqa: F401  (registers the deploy check for unreviewed articles)
