from __future__ import annotations

from django.urls import path

from . import views

app_name = "cases"

urlpatterns = [
    path("", views.workbench, name="workbench"),
    path("groups/<int:pk>/", views.group_detail, name="group"),
    path("groups/<int:pk>/<str:action>/", views.group_action, name="group_action"),
    path("cases/<int:pk>/", views.case_detail, name="case"),
    path("cases/<int:pk>/<str:action>/", views.case_action, name="case_action"),
    path("events/<int:pk>/annotate/", views.event_annotate, name="event_annotate"),
    path("journeys/<int:pk>/flag/", views.journey_flag, name="journey_flag"),
    path("labels/", views.label_list, name="labels"),
    path("labels/<int:pk>/", views.label_edit, name="label_edit"),
]
