from __future__ import annotations

from django.urls import path

from . import views

app_name = "audit"

urlpatterns = [
    path("", views.search, name="search"),
    path("export.csv", views.export_search, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export_search, {"fmt": "jsonl"}, name="export_jsonl"),
    path("records/<int:pk>/", views.record_detail, name="record"),
    path("journeys/<int:pk>/", views.journey_story, name="journey"),
    path(
        "journeys/<int:pk>/export.csv",
        views.export_journey,
        {"fmt": "csv"},
        name="journey_export_csv",
    ),
    path(
        "journeys/<int:pk>/export.jsonl",
        views.export_journey,
        {"fmt": "jsonl"},
        name="journey_export_jsonl",
    ),
    path("journeys/<int:pk>/unmask/", views.unmask, name="unmask"),
    path("verify/", views.verify_page, name="verify"),
    path("verify/start/", views.verify_start, name="verify_start"),
    path("verify/<int:pk>/", views.verify_progress, name="verify_progress"),
    path("verify/<int:pk>/acknowledge/", views.verify_acknowledge, name="verify_acknowledge"),
]
