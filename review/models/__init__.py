from .approvals import Approval, ApprovalRequest, ReviewSample
from .scopes import CumulativeLimit, LimitCounter, LimitUsage, PermissionScope, ScopeChange

__all__ = [
    "Approval",
    "ApprovalRequest",
    "CumulativeLimit",
    "LimitCounter",
    "LimitUsage",
    "PermissionScope",
    "ReviewSample",
    "ScopeChange",
]
