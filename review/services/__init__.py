"""Governance services: deciding proposals, expiring them, after-the-fact review, scope changes."""

from .decisions import (
    BatchItem,
    DecisionError,
    DecisionResult,
    proposal_approve,
    proposal_claim,
    proposal_edit_approve,
    proposal_reject,
    proposal_release_claim,
    proposals_decide_batch,
    proposals_expire,
    sample_mark,
)
from .scopes import ScopeError, limit_save, limit_set_enabled, scope_save, scope_set_enabled

__all__ = [
    "BatchItem",
    "DecisionError",
    "DecisionResult",
    "ScopeError",
    "limit_save",
    "limit_set_enabled",
    "proposal_approve",
    "proposal_claim",
    "proposal_edit_approve",
    "proposal_reject",
    "proposal_release_claim",
    "proposals_decide_batch",
    "proposals_expire",
    "sample_mark",
    "scope_save",
    "scope_set_enabled",
]
