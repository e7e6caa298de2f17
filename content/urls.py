"""The public guide pages: one page per published article, and an index, per language (included at /guide/)."""
from django.urls import path

from content import views

app_name = "content"

urlpatterns = [
    path("<str:language>/", views.guide_index, name="guide_index"),
    path("<str:language>/<str:slug>/", views.guide_article, name="guide_article"),
]
