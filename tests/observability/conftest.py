"""Worker processes started by a test: the same helpers as the fault tests."""

from tests.faults.conftest import fault_queue, processes  # noqa: F401
