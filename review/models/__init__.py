from .cases import Annotation, CaseGroup, ExceptionCase, Label

__all__ = ["Annotation", "CaseGroup", "ExceptionCase", "Label"]
