from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from . import board, control, views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("no-access/", views.no_access, name="no_access"),
    path("journeys/", views.journey_list, name="journey_list"),
    path("journeys/<int:pk>/", views.journey_detail, name="journey_detail"),
    path("journeys/<int:pk>/timeline/", views.journey_timeline, name="journey_timeline"),
    path("board/", board.board, name="board"),
    path("journeys/<int:pk>/take-over/", control.take_over, name="journey_take_over"),
    path("journeys/<int:pk>/hand-back/", control.hand_back, name="journey_hand_back"),
    path("journeys/<int:pk>/message/", control.send_message, name="journey_send_message"),
    path("journeys/<int:pk>/propose/", control.propose, name="journey_propose"),
    path("journeys/<int:pk>/execute-approved/", control.execute_approved,
         name="journey_execute_approved"),
    path("proposals/<int:pk>/withdraw/", control.withdraw, name="proposal_withdraw"),
    path("agents/pause/", control.stop_button, name="agents_stop_button"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
