from .approvals import Approval, ApprovalRequest, ReviewSample
from .audit import AuditCheckpoint, AuditRecord, AuditVerification, SensitiveDataGrant
from .scopes import CumulativeLimit, LimitCounter, LimitUsage, PermissionScope, ScopeChange

__all__ = [
    "Approval",
    "ApprovalRequest",
    "AuditCheckpoint",
    "AuditRecord",
    "AuditVerification",
    "CumulativeLimit",
    "LimitCounter",
    "LimitUsage",
    "PermissionScope",
    "ReviewSample",
    "ScopeChange",
    "SensitiveDataGrant",
]
