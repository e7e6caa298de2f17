"""Django's admin app with this project's admin site as its default site (so `admin.site` and
every `@admin.register` use it). Kept free of model imports: it is loaded while apps populate."""
from django.contrib.admin.apps import AdminConfig


class NurtureAdminConfig(AdminConfig):
    default_site = "config.admin_site.NurtureAdminSite"
