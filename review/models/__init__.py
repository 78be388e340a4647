from .approvals import Approval, ApprovalRequest, ReviewSample
from .audit import AuditArchive, AuditCheckpoint, AuditRecord, AuditVerification, SensitiveDataGrant
from .cases import Annotation, CaseGroup, ExceptionCase, Label
from .governance import GovernanceChange
from .scopes import CumulativeLimit, LimitCounter, LimitUsage, PermissionScope, RulesVersion, ScopeChange

__all__ = [
    "Annotation",
    "Approval",
    "ApprovalRequest",
    "AuditArchive",
    "AuditCheckpoint",
    "AuditRecord",
    "AuditVerification",
    "CaseGroup",
    "CumulativeLimit",
    "ExceptionCase",
    "GovernanceChange",
    "Label",
    "LimitCounter",
    "LimitUsage",
    "PermissionScope",
    "ReviewSample",
    "RulesVersion",
    "ScopeChange",
    "SensitiveDataGrant",
]
