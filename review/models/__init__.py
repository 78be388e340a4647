from .audit import AuditCheckpoint, AuditRecord, AuditVerification, SensitiveDataGrant

__all__ = ["AuditCheckpoint", "AuditRecord", "AuditVerification", "SensitiveDataGrant"]
