"""URLs of the custom staff views under the admin path (included by config/urls.py before admin.site.urls)."""
from django.urls import include, path

from nurture.admin import overview, previews, results

urlpatterns = [
    path("nurture/email-preview/", include((previews.urlpatterns, "email_preview"))),
    path("nurture/overview/", overview.overview, name="nurture_overview"),
    path("nurture/results/", results.results_page, name="nurture_results"),
    path("nurture/results/comments/", results.feedback_comments_page, name="nurture_feedback_comments"),
]
