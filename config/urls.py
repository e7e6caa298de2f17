"""The site's URLs: the language switch, staff tools and admin, provider webhooks, the public pages.

The admin (and the staff tools under it) lives at DJANGO_ADMIN_PATH, "admin/" unless set."""
from django.conf import settings
from django.contrib import admin
from django.urls import include, path

ADMIN = settings.DJANGO_ADMIN_PATH

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the page's language switch
    # Staff email tools and the overview live under /admin/ but outside the AdminSite, so they come first.
    path(ADMIN, include("nurture.admin.urls")),
    path(ADMIN, admin.site.urls),
    # Provider webhooks, e.g. /anymail/postmark/tracking/ (docs/webhooks-and-retention.md).
    path("anymail/", include("nurture.web.webhooks")),
    path("guide/", include("content.urls")),  # the public guide pages (docs/content.md)
    path("", include("nurture.web.urls")),
]

# A refusal names the permission that is missing (nurture.admin.base.permission_denied).
handler403 = "nurture.admin.base.permission_denied"
# A server error gets templates/500.html, standing alone (nurture.web.answers.server_error).
handler500 = "nurture.web.answers.server_error"
