from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.queue, name="review_queue"),
    path("actions/<int:pk>/approve/", views.approve, name="review_approve"),
    path("actions/<int:pk>/claim/", views.claim, name="review_claim"),
    path("actions/<int:pk>/release/", views.release_claim, name="review_release_claim"),
    path("actions/<int:pk>/reject/", views.reject, name="review_reject"),
    path("actions/<int:pk>/edit/", views.edit_approve, name="review_edit"),
    path("batch/", views.batch, name="review_batch"),
    path("scopes/", views.scope_list, name="review_scopes"),
    path("scopes/new/", views.scope_create, name="review_scope_create"),
    path("scopes/<int:pk>/", views.scope_edit, name="review_scope_edit"),
    path("scopes/<int:pk>/toggle/", views.scope_toggle, name="review_scope_toggle"),
    path("limits/new/", views.limit_create, name="review_limit_create"),
    path("limits/<int:pk>/", views.limit_edit, name="review_limit_edit"),
    path("limits/<int:pk>/toggle/", views.limit_toggle, name="review_limit_toggle"),
    path("samples/", views.sample_list, name="review_samples"),
    path("samples/<int:pk>/mark/", views.sample_mark, name="review_sample_mark"),
]
