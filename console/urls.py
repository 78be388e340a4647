from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.v1 import api

from . import api_admin, board, control, desk, governance, teams, views

# An error raised outside a view (a session lookup with the database down) lands here.
handler500 = "console.unavailable.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("settings/", views.operator_settings, name="operator_settings"),
    path("no-access/", views.no_access, name="no_access"),
    path("journeys/", views.journey_list, name="journey_list"),
    path("journeys/<int:pk>/", views.journey_detail, name="journey_detail"),
    path("journeys/<int:pk>/timeline/", views.journey_timeline, name="journey_timeline"),
    path("board/", board.board, name="board"),
    path("desk/", desk.desk, name="desk"),
    path("desk/claim-next/", desk.claim_next, name="desk_claim_next"),
    path("desk/claim/", desk.claim_selected, name="desk_claim_selected"),
    path("journeys/<int:pk>/assign/", desk.assign, name="journey_assign"),
    path("journeys/<int:pk>/release/", desk.release, name="journey_release"),
    path("journeys/<int:pk>/take-over/", control.take_over, name="journey_take_over"),
    path("journeys/<int:pk>/hand-back/", control.hand_back, name="journey_hand_back"),
    path("journeys/<int:pk>/message/", control.send_message, name="journey_send_message"),
    path("journeys/<int:pk>/propose/", control.propose, name="journey_propose"),
    path("journeys/<int:pk>/execute-approved/", control.execute_approved, name="journey_execute_approved"),
    path("proposals/<int:pk>/withdraw/", control.withdraw, name="proposal_withdraw"),
    path("agents/pause/", control.stop_button, name="agents_stop_button"),
    path("healthz", views.healthz, name="healthz"),
    path("audit/", include("review.audit.urls")),
    path("teams/", teams.team_list, name="team_list"),
    path("teams/new/", teams.team_create, name="team_create"),
    path("teams/<int:pk>/", teams.team_detail, name="team_detail"),
    path("teams/<int:pk>/grants/", teams.team_grants, name="team_grants"),
    path("teams/<int:pk>/organisation-rights/", teams.team_org_rights, name="team_org_rights"),
    path("teams/<int:pk>/members/", teams.team_member_add, name="team_member_add"),
    path("teams/<int:pk>/members/<int:user_id>/remove/", teams.team_member_remove, name="team_member_remove"),
    path("teams/<int:pk>/delete/", teams.team_delete, name="team_delete"),
    path("teams/agents/<int:pk>/", teams.agent_grants_page, name="agent_grants_page"),
    path("teams/agents/<int:pk>/grants/", teams.agent_grants, name="agent_grants"),
    path("governance/", governance.governance_list, name="governance_list"),
    path("governance/<int:pk>/", governance.governance_detail, name="governance_detail"),
    path("governance/<int:pk>/approve/", governance.governance_approve_view, name="governance_approve"),
    path("governance/<int:pk>/reject/", governance.governance_reject_view, name="governance_reject"),
    path("review/", include("review.urls")),
    path("api/v1/", api.urls),
    path("api-tokens/", api_admin.token_list, name="api_tokens"),
    path("api-tokens/<int:pk>/revoke/", api_admin.token_revoke_view, name="api_token_revoke"),
    path("webhooks/", api_admin.webhook_list, name="webhooks"),
    path("webhooks/<int:pk>/", api_admin.webhook_detail, name="webhook_detail"),
    path("webhooks/<int:pk>/rotate/", api_admin.webhook_rotate, name="webhook_rotate"),
    path("webhooks/deliveries/<int:pk>/replay/", api_admin.webhook_replay, name="webhook_replay"),
    path("admin/", admin.site.urls),
    path("exceptions/", include("review.cases.urls")),
    path("metrics/", include("console.metrics.urls")),
]
