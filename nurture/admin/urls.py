"""URLs of the custom staff views under the admin path (included by config/urls.py before admin.site.urls)."""
from django.urls import include, path

from nurture.admin import overview, previews

urlpatterns = [
    path("nurture/email-preview/", include((previews.urlpatterns, "email_preview"))),
    path("nurture/overview/", overview.overview, name="nurture_overview"),
]
