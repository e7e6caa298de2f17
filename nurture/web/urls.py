"""The public URLs (included at the site root by config/urls.py, namespace "nurture")."""
from django.urls import path

from nurture.web import care, dev_outbox, health, links, metrics, privacy, signup

app_name = "nurture"

urlpatterns = [
    path("", signup.signup, name="signup"),
    path("thanks/", signup.signup_done, name="signup_done"),
    path("privacy/", privacy.privacy_notice, name="privacy"),
    path("confirm/<str:token>/", links.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", links.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", links.preferences, name="preferences"),
    path("preferences/<str:token>/export/", care.preferences_export, name="preferences_export"),
    path("pause/<str:token>/", care.pause, name="pause"),
    path("carer/confirm/<str:token>/", care.carer_confirm, name="carer_confirm"),
    path("carer/stop/<str:token>/", care.carer_stop, name="carer_stop"),
    path("email/<str:token>/", links.view_online, name="view_online"),
    path("links/<str:token>/", links.fresh_link, name="fresh_link"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("dev/outbox/", dev_outbox.dev_outbox, name="dev_outbox"),
    path("dev/outbox/<str:name>", dev_outbox.dev_outbox, name="dev_outbox_message"),
]
