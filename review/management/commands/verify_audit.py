"""``manage.py verify_audit``: check every audit chain, signed checkpoint and archive row.

Exits 0 when the trail is intact; otherwise exits 1 and names the first broken record. The
checkpoints are compared with the outside sink (``AUDIT_CHECKPOINT_DIR``) by default, which
catches a deleted tail together with the newest checkpoints, and a full re-hash; ``--checkpoints
FILE`` compares with another copy instead.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from review.audit.offline import read_checkpoints
from review.audit.sink import sink_path
from review.audit.verify import MAX_PROCESSES, VerifyIncomplete, audit_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chains and signed checkpoints against the outside sink."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--checkpoints",
            metavar="FILE",
            help="JSON Lines copy of the checkpoints kept outside the database (default: the sink)",
        )
        parser.add_argument("--no-sink", action="store_true", help="check the database alone")
        parser.add_argument(
            "--processes",
            type=int,
            metavar="N",
            help="worker processes walking the chains on PostgreSQL (default AUDIT_VERIFY_PROCESSES; "
            "0: one per CPU; 1: this process alone)",
        )

    def handle(
        self,
        *args: Any,
        checkpoints: str | None = None,
        no_sink: bool = False,
        processes: int | None = None,
        **options: Any,
    ) -> None:
        external = None
        if checkpoints:
            try:
                external = read_checkpoints(checkpoints)
            except (OSError, ValueError) as exc:
                raise CommandError(f"Cannot read the checkpoint copy {checkpoints}: {exc}") from exc
        if processes is not None and not 0 <= processes <= MAX_PROCESSES:
            raise CommandError(f"--processes must be from 0 (one per CPU) to {MAX_PROCESSES}")
        try:
            result = audit_verify(external_checkpoints=external, use_sink=not no_sink, processes=processes)
        except VerifyIncomplete as exc:
            raise CommandError(
                f"The verification did not finish ({exc}): nothing is concluded about the trail. Run it again."
            ) from exc
        if not checkpoints and not no_sink and not result.sink_checked:
            self.stderr.write(f"No outside copy of the checkpoints at {sink_path()} yet (beat writes it).")
        for found in result.breaks:
            self.stderr.write(f"BROKEN {found}")
        if not result.ok:
            raise CommandError(result.summary())
        self.stdout.write(self.style.SUCCESS(result.summary()))
