"""The public URLs (included at the site root by config/urls.py, namespace "nurture")."""
from django.urls import path

from nurture.web import (
    bereavement, care, checkin, dev_outbox, feedback, health, links, metrics, preferences, privacy, signup,
)

app_name = "nurture"

urlpatterns = [
    path("", signup.signup, name="signup"),
    path("thanks/", signup.signup_done, name="signup_done"),
    path("privacy/", privacy.privacy_notice, name="privacy"),
    path("confirm/<str:token>/", links.confirm, name="confirm"),
    path("unsubscribe/<str:token>/", links.unsubscribe, name="unsubscribe"),
    path("preferences/<str:token>/", preferences.preferences, name="preferences"),
    path("preferences/<str:token>/export/", preferences.preferences_export, name="preferences_export"),
    path("preferences/<str:token>/bereavement/", bereavement.from_preferences, name="bereavement"),
    path("pause/<str:token>/", care.pause, name="pause"),
    path("carer/confirm/<str:token>/", care.carer_confirm, name="carer_confirm"),
    path("carer/stop/<str:token>/", care.carer_stop, name="carer_stop"),
    path("carer/approve/<str:token>/", care.carer_approve, name="carer_approve"),
    path("carer/cancel/<str:token>/", care.carer_cancel, name="carer_cancel"),
    path("carer/email/<str:token>/", care.carer_view, name="carer_view"),
    path("carer/bereavement/<str:token>/", bereavement.from_carer, name="carer_bereavement"),
    path("checkin/<str:token>/", checkin.checkin, name="checkin"),
    path("email/<str:token>/", links.view_online, name="view_online"),
    path("links/<str:token>/", links.new_links_request, name="new_links_request"),
    path("feedback/<str:token>/", feedback.feedback, name="feedback"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("dev/outbox/", dev_outbox.dev_outbox, name="dev_outbox"),
    path("dev/outbox/<str:name>", dev_outbox.dev_outbox, name="dev_outbox_message"),
]
