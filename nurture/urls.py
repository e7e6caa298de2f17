from django.contrib import admin
from django.urls import include, path

from nurture import admin_emails, admin_overview, views


public = [
    path("", views.signup, name="signup"),
    path("thanks/", views.signup_done, name="signup_done"),
    path("confirm/<str:token>/", views.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", views.preferences, name="preferences"),
    path("email/<str:token>/", views.view_online, name="view_online"),
    path("healthz", views.healthz, name="healthz"),
    path("dev/outbox/", views.dev_outbox, name="dev_outbox"),
    path("dev/outbox/<str:name>", views.dev_outbox, name="dev_outbox_message"),
]

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: the page's language switch
    # Staff email tools live under /admin/ but outside the AdminSite, so they come first.
    path("admin/nurture/email-preview/", include((admin_emails.urlpatterns, "email_preview"))),
    path("admin/nurture/overview/", admin_overview.overview, name="nurture_overview"),
    path("admin/", admin.site.urls),
    # Provider webhooks, e.g. /anymail/postmark/tracking/ (docs/webhooks-and-retention.md).
    path("anymail/", include("nurture.webhook_urls")),
    path("", include((public, "nurture"))),
]
