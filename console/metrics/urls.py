from __future__ import annotations

from django.urls import path

from . import views

app_name = "metrics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("export.csv", views.export_csv, name="export"),
]
