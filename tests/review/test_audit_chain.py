"""The audit trail: appended with every change, refused by the database, verified, exported."""

from __future__ import annotations

import io
import itertools
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from journeys.events import governance_changed
from journeys.models import Event
from journeys.services import journey_start
from review.audit import offline
from review.audit.chain import audit_append, checkpoint_create
from review.audit.export import Export
from review.audit.offline import GENESIS, verify_file
from review.audit.verify import audit_verify
from review.models import AuditCheckpoint, AuditRecord
from review.models.audit import GOVERNANCE_CHAIN, journey_chain
from tests.conftest import as_database_superuser


@pytest.fixture
def journey(demo):
    return journey_start(definition="fee_refund", customer_ref="CUST-00001", message="Why this fee?")


def test_every_journey_event_is_written_to_the_journeys_chain_in_order(journey):
    events = list(journey.events.order_by("id"))
    records = list(AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq"))
    assert [r.event_id for r in records] == [e.pk for e in events]
    assert [r.seq for r in records] == list(range(1, len(events) + 1))
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert records[0].customer_ref == "CUST-00001"
    assert records[0].definition_id == journey.definition_id


def test_an_event_rolled_back_leaves_no_audit_record(journey):
    before = AuditRecord.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        from journeys import events

        events.record(journey, Event.Kind.AGENT_NOTE, "a note that never happened")
        raise RuntimeError("roll back")
    assert AuditRecord.objects.count() == before


def test_governance_changes_land_on_the_governance_chain_with_before_and_after(admin_user):
    governance_changed.send(
        sender=None,
        kind="scope_change",
        actor=admin_user,
        subject="Refund scope",
        before={"limit": 35},
        after={"limit": 50},
        reason="new policy",
        data={},
    )
    record = AuditRecord.objects.get(chain=GOVERNANCE_CHAIN, kind="scope_change")
    assert record.actor_label == "admin"
    assert record.payload["before"] == {"limit": 35}
    assert record.payload["after"] == {"limit": 50}


def test_the_database_refuses_update_and_delete_through_the_orm(journey):
    record = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).first()
    with pytest.raises(ValueError):
        record.save()
    with pytest.raises(ValueError):
        record.delete()
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditRecord.objects.filter(pk=record.pk).update(summary="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditRecord.objects.filter(pk=record.pk).delete()
    assert AuditRecord.objects.get(pk=record.pk).summary == record.summary


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE review_auditrecord SET summary = 'rewritten'",
        "DELETE FROM review_auditrecord",
        "TRUNCATE review_auditrecord",
        "UPDATE review_auditcheckpoint SET signature = 'x'",
        "DELETE FROM review_auditcheckpoint",
        "TRUNCATE review_auditcheckpoint",
    ],
)
def test_the_database_refuses_raw_sql_that_changes_history(journey, statement):
    checkpoint_create()
    with (
        # As the application's role the privilege is missing; as a superuser the trigger refuses.
        pytest.raises(DatabaseError, match=r"append-only|permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        # The suite's flush escape hatch is on for every test connection; a real session has it off.
        cursor.execute("SET LOCAL handoff.allow_audit_truncate = off")
        cursor.execute(statement)


def test_the_truncate_escape_hatch_needs_a_superuser(journey):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        as_database_superuser() as cursor,
    ):
        cursor.execute("CREATE ROLE handoff_app_test NOLOGIN")
        cursor.execute("GRANT ALL ON review_auditrecord TO handoff_app_test")
        cursor.execute("SET LOCAL ROLE handoff_app_test")
        cursor.execute("SET LOCAL handoff.allow_audit_truncate = on")
        cursor.execute("TRUNCATE review_auditrecord")


def _tamper(sql: str, params: list) -> None:
    """Edit the trail the way a database superuser could: with the trigger switched off."""
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditrecord DISABLE TRIGGER review_auditrecord_append_only")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE review_auditrecord ENABLE TRIGGER review_auditrecord_append_only")


def test_verify_audit_passes_on_an_intact_trail(journey, capsys):
    checkpoint_create()
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out


def test_verify_audit_names_the_record_edited_with_the_trigger_disabled(journey, capsys):
    victim = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq")[1]
    _tamper("UPDATE review_auditrecord SET summary = 'nothing to see' WHERE id = %s", [victim.pk])
    with pytest.raises(CommandError, match=f"record {victim.pk} "):
        call_command("verify_audit")
    assert f"BROKEN record {victim.pk}" in capsys.readouterr().err


def test_verify_audit_finds_an_edited_payload(journey):
    victim = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq").first()
    _tamper("UPDATE review_auditrecord SET payload = '{\"data\": {}}' WHERE id = %s", [victim.pk])
    result = audit_verify()
    assert result.first_break.record_id == victim.pk
    assert "payload" in result.first_break.reason


def test_verify_audit_finds_a_deleted_record_in_the_middle_of_a_chain(journey):
    records = list(AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq"))
    _tamper("DELETE FROM review_auditrecord WHERE id = %s", [records[1].pk])
    result = audit_verify()
    assert not result.ok
    assert result.first_break.record_id == records[2].pk


def test_a_signed_checkpoint_catches_a_deleted_tail(journey):
    checkpoint_create()
    last = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("-seq").first()
    _tamper("DELETE FROM review_auditrecord WHERE id = %s", [last.pk])
    result = audit_verify()
    assert not result.ok
    assert "missing" in str(result.first_break)


def _rehash_chain(chain: str) -> None:
    """A full re-hash: rewrite one record and recompute every hash after it, like an attacker
    with database superuser rights and the hashing formula (but not the signing key)."""
    from review.audit.chain import header_fields
    from review.audit.offline import payload_digest, record_hash

    previous = GENESIS
    for record in AuditRecord.objects.filter(chain=chain).order_by("seq"):
        if record.seq == 1:
            record.summary = "rewritten history"
        record.prev_hash = previous
        record.payload_sha256 = payload_digest(record.payload, salt=record.payload_salt)
        record.hash = record_hash(header_fields(record))
        _tamper(
            "UPDATE review_auditrecord SET summary = %s, prev_hash = %s, hash = %s WHERE id = %s",
            [record.summary, record.prev_hash, record.hash, record.pk],
        )
        previous = record.hash


def test_a_full_rehash_is_caught_by_the_signed_checkpoint(journey):
    checkpoint_create()
    _rehash_chain(journey_chain(journey.pk))
    result = audit_verify()
    assert not result.ok
    assert "re-hashed" in str(result.first_break)


def test_a_rehash_with_rewritten_checkpoints_is_caught_by_the_copy_kept_outside(journey, tmp_path):
    outside = tmp_path / "checkpoints.jsonl"
    call_command("export_audit_checkpoints", output=str(outside), stderr=io.StringIO())
    _rehash_chain(journey_chain(journey.pk))
    # The attacker also rewrites the checkpoint table to match (they even hold the key here).
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditcheckpoint DISABLE TRIGGER review_auditcheckpoint_append_only")
        cursor.execute("DELETE FROM review_auditcheckpoint")
        cursor.execute("ALTER TABLE review_auditcheckpoint ENABLE TRIGGER review_auditcheckpoint_append_only")
    checkpoint_create()
    assert audit_verify(use_sink=False).ok  # the database alone now looks consistent…
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit", checkpoints=str(outside))  # …the outside copy does not agree


def test_checkpoints_sign_only_chains_that_grew(journey):
    first = checkpoint_create()
    assert journey_chain(journey.pk) in first.heads
    assert checkpoint_create() is None
    audit_append(chain=GOVERNANCE_CHAIN, kind="note", summary="something happened")
    second = checkpoint_create()
    assert set(second.heads) == {GOVERNANCE_CHAIN}
    assert second.prev_hash == first.hash
    assert AuditCheckpoint.objects.count() == 2


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_an_export_re_verifies_offline_and_an_edited_export_does_not(journey, tmp_path, fmt):
    checkpoint_create()
    records = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq")
    lines = Export(records, may_unmask=lambda r: True, whole_chain=journey_chain(journey.pk)).lines(fmt)
    path = tmp_path / f"export.{fmt}"
    path.write_text("".join(lines), encoding="utf-8")
    report = verify_file(str(path))
    assert report["ok"], report["problems"]
    assert report["records"] == records.count()
    assert report["gaps"] == 0
    call_command("verify_audit_export", str(path), stdout=io.StringIO())
    # The verifier runs on its own with no site-packages (-S): the standard library only.
    script = str(Path(offline.__file__))
    standalone = subprocess.run(
        [sys.executable, "-I", "-S", script, str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert standalone.returncode == 0, standalone.stdout + standalone.stderr
    assert "OK: every exported record is intact." in standalone.stdout

    path.write_text(path.read_text(encoding="utf-8").replace("Why this fee?", "Why that fee?"), encoding="utf-8")
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_audit_export", str(path), stderr=io.StringIO())


def test_a_masked_export_still_verifies_through_payload_digests(journey, tmp_path):
    audit_append(
        chain=journey_chain(journey.pk),
        kind="note",
        summary="card looked up",
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        payload={"card": "4000123412341234"},
    )
    checkpoint_create()
    records = AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("seq")
    text = "".join(Export(records, may_unmask=lambda r: False, whole_chain=journey_chain(journey.pk)).jsonl())
    assert "4000123412341234" not in text
    path = tmp_path / "masked.jsonl"
    path.write_text(text, encoding="utf-8")
    report = verify_file(str(path))
    assert report["ok"], report["problems"]
    assert report["masked_payloads"] == 1
    assert json.loads(text.splitlines()[-2])["payload"]["card"].endswith("1234")


@pytest.mark.django_db(transaction=True)
def test_concurrent_appends_to_one_chain_stay_linear(demo):
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                with transaction.atomic():
                    audit_append(chain="journey:999999", kind="note", summary=f"writer {n} record {i}")
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    records = list(AuditRecord.objects.filter(chain="journey:999999").order_by("seq"))
    assert [r.seq for r in records] == list(range(1, 61))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert audit_verify().ok


@pytest.mark.django_db(transaction=True)
def test_a_writer_that_waited_for_the_chain_lock_reads_the_head_the_other_committed(demo):
    """The lock and the head read go to the server in one round trip but as two statements: the
    read must see the record that the writer holding the lock committed while we waited."""
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first() -> None:
        try:
            with transaction.atomic():
                audit_append(chain="journey:888888", kind="note", summary="first, holding the lock")
                holding.set()
                release.wait(10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def second() -> None:
        try:
            with transaction.atomic():
                audit_append(chain="journey:888888", kind="note", summary="second, waited")
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    one = threading.Thread(target=first)
    one.start()
    assert holding.wait(10)
    two = threading.Thread(target=second)
    two.start()
    two.join(0.5)
    assert two.is_alive(), "the second writer did not wait for the chain's lock"
    release.set()
    one.join(10)
    two.join(10)
    assert not errors
    first_record, second_record = AuditRecord.objects.filter(chain="journey:888888").order_by("seq")
    assert (first_record.seq, second_record.seq) == (1, 2)
    assert second_record.prev_hash == first_record.hash and second_record.summary == "second, waited"


def test_payload_numbers_read_back_exactly_as_hashed(demo):
    record = audit_append(
        chain=GOVERNANCE_CHAIN,
        kind="note",
        summary="numbers",
        payload={"big": 1.5e20, "huge": 1e300, "small": 1e-7, "conf": 0.85, "amount": "12.30"},
    )
    assert audit_verify().ok
    stored = AuditRecord.objects.get(pk=record.pk).payload
    assert stored["big"] == 150000000000000000000 and stored["conf"] == 0.85
