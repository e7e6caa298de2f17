"""The site's URLs: the language switch, staff tools and admin, provider webhooks, the public pages."""
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the page's language switch
    # Staff email tools and the overview live under /admin/ but outside the AdminSite, so they come first.
    path("admin/", include("nurture.admin.urls")),
    path("admin/", admin.site.urls),
    # Provider webhooks, e.g. /anymail/postmark/tracking/ (docs/webhooks-and-retention.md).
    path("anymail/", include("nurture.web.webhooks")),
    path("", include("nurture.web.urls")),
]
