"""The core-systems adapter: the interface a real bank implements, and the demo's simulation."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .base import CoreBank, CoreBankError, CoreBankRejected, CoreBankUnavailable

__all__ = ["CoreBank", "CoreBankError", "CoreBankRejected", "CoreBankUnavailable", "get_core_bank"]


@cache
def _core_bank_class(path: str) -> type[CoreBank]:
    return import_string(path)


def get_core_bank() -> CoreBank:
    path = settings.HANDOFF["CORE_BANK"]
    if not path:
        raise ImproperlyConfigured("Set HANDOFF_CORE_BANK to your core-bank adapter (see manage.py check --deploy).")
    return _core_bank_class(path)()
