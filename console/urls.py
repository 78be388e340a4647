from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("no-access/", views.no_access, name="no_access"),
    path("journeys/", views.journey_list, name="journey_list"),
    path("journeys/<int:pk>/", views.journey_detail, name="journey_detail"),
    path("journeys/<int:pk>/timeline/", views.journey_timeline, name="journey_timeline"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("exceptions/", include("review.cases.urls")),
    path("metrics/", include("console.metrics.urls")),
]
