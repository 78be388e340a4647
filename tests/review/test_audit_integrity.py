"""The chain's tail, the database roles, retention and the trail's own health."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone

from journeys.models import Event, Journey
from journeys.services import journey_start
from review.audit import tasks
from review.audit.archive import audit_archive
from review.audit.chain import AuditWriteError, audit_append, checkpoint_create
from review.audit.offline import verify_file
from review.audit.sink import checkpoint_publish, sink_path, sink_read
from review.audit.verify import audit_verify
from review.models import AuditArchive, AuditCheckpoint, AuditRecord, AuditVerification
from review.models.audit import GOVERNANCE_CHAIN, journey_chain
from tests.conftest import RUN_AS_APP_ROLE, app_role_name, as_database_superuser


@pytest.fixture
def journey(demo) -> Journey:
    return journey_start(definition="fee_refund", customer_ref="CUST-00001", message="Why this fee?")


def _tail(journey: Journey) -> AuditRecord:
    return AuditRecord.objects.filter(chain=journey_chain(journey.pk)).order_by("-seq").first()


# --- checkpoints leave the database by themselves --------------------------------------------


def test_beat_signs_a_checkpoint_every_60_seconds_and_writes_each_new_one_to_the_sink(journey):
    schedule = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"]
    assert schedule["task"] == "review.audit.tasks.audit_checkpoint"
    assert schedule["schedule"] == 60.0
    first = tasks.audit_checkpoint()
    assert [c["seq"] for c in sink_read()] == [first]
    assert tasks.audit_checkpoint() is None  # nothing grew: nothing new is signed or written
    audit_append(chain=GOVERNANCE_CHAIN, kind="note", summary="something happened")
    second = tasks.audit_checkpoint()
    lines = sink_path().read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [first, second]
    assert json.loads(lines[-1])["signature"] == AuditCheckpoint.objects.get(seq=second).signature


def test_a_checkpoint_that_failed_to_reach_the_sink_is_sent_on_the_next_run(journey):
    checkpoint_create()  # signed, but the sink was not reachable this time
    audit_append(chain=GOVERNANCE_CHAIN, kind="note", summary="more")
    tasks.audit_checkpoint()
    assert [c["seq"] for c in sink_read()] == [1, 2]
    assert checkpoint_publish() == 0


def test_deleting_the_tail_with_the_newest_checkpoint_is_caught_by_default(journey):
    tasks.audit_checkpoint()
    tail = _tail(journey)
    with as_database_superuser() as cursor:
        for table, trigger in (
            ("review_auditrecord", "review_auditrecord_append_only"),
            ("review_auditcheckpoint", "review_auditcheckpoint_append_only"),
        ):
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        cursor.execute("DELETE FROM review_auditrecord WHERE id = %s", [tail.pk])
        cursor.execute("DELETE FROM review_auditcheckpoint")
        cursor.execute("ALTER TABLE review_auditrecord ENABLE TRIGGER review_auditrecord_append_only")
        cursor.execute("ALTER TABLE review_auditcheckpoint ENABLE TRIGGER review_auditcheckpoint_append_only")
    assert audit_verify(use_sink=False).ok  # the database alone looks consistent…
    err = io.StringIO()
    with pytest.raises(CommandError, match="BROKEN"):
        call_command("verify_audit", stderr=err)  # …the sink, read by default, does not
    assert "missing from the database" in err.getvalue()
    assert f"checkpointed head #{tail.seq} is missing" in err.getvalue()


def test_a_sink_that_stopped_receiving_is_reported(journey):
    old = checkpoint_create()
    AuditCheckpoint.objects.filter(pk=old.pk)  # signed an hour ago, never sent
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditcheckpoint DISABLE TRIGGER review_auditcheckpoint_append_only")
        cursor.execute("UPDATE review_auditcheckpoint SET at = at - interval '1 hour' WHERE id = %s", [old.pk])
        cursor.execute("ALTER TABLE review_auditcheckpoint ENABLE TRIGGER review_auditcheckpoint_append_only")
    sink_path().parent.mkdir(parents=True)
    sink_path().write_text("")
    result = audit_verify()
    assert any("never reached the outside sink" in str(b) for b in result.breaks)


def test_checkpoints_also_go_to_syslog_when_configured(journey, settings):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    settings.AUDIT_CHECKPOINT_SINKS = ["file", "syslog"]
    settings.AUDIT_CHECKPOINT_SYSLOG_ADDRESS = f"127.0.0.1:{receiver.getsockname()[1]}"
    try:
        seq = tasks.audit_checkpoint()
        message = receiver.recv(65536).decode()
    finally:
        receiver.close()
    signed = AuditCheckpoint.objects.get(seq=seq)
    assert signed.signature in message and signed.hash in message


# --- the application's database role ------------------------------------------------------------


def _connect_as_app_role():
    with as_database_superuser():
        call_command("database_roles", create=True, app_role=app_role_name(), owner_role="postgres", verbosity=0)
    params = connection.get_connection_params()
    return psycopg.connect(
        host=params.get("host", "127.0.0.1"),
        port=params.get("port", 5432),
        dbname=params["dbname"],
        user=app_role_name(),
        autocommit=True,
    )


@pytest.mark.django_db(transaction=True)
def test_the_application_role_cannot_disable_triggers_truncate_or_replicate_around_them(journey):
    record = _tail(journey)
    with _connect_as_app_role() as app:
        role = app.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user").fetchone()
        assert role == (False, False)
        attempts = {
            "ALTER TABLE review_auditrecord DISABLE TRIGGER ALL": "must be owner",
            "ALTER TABLE review_auditrecord DISABLE TRIGGER review_auditrecord_append_only": "must be owner",
            "ALTER TABLE review_auditcheckpoint DISABLE TRIGGER ALL": "must be owner",
            "TRUNCATE review_auditrecord": "permission denied",
            "TRUNCATE review_auditcheckpoint": "permission denied",
            "SET session_replication_role = replica": "permission denied",
            "SET handoff.allow_audit_truncate = on; TRUNCATE review_auditrecord": "permission denied",
            f"UPDATE review_auditrecord SET summary = 'x' WHERE id = {record.pk}": "permission denied",
            f"DELETE FROM review_auditrecord WHERE id = {record.pk}": "permission denied",
            "DELETE FROM review_auditcheckpoint": "permission denied",
            "INSERT INTO review_auditarchive (seq, at, cutoff, heads, records, file_name, file_sha256,"
            " prev_hash, hash, signature, key_id) VALUES (99, now(), now(), '{}', 0, '', '', '', '', '', '')": (
                "permission denied"
            ),
            "DROP TRIGGER review_auditrecord_append_only ON review_auditrecord": "must be owner",
        }
        for statement, error in attempts.items():
            with pytest.raises(psycopg.Error, match=error):
                app.execute(statement)
        # What it may do: read the trail and append to it.
        assert app.execute("SELECT count(*) FROM review_auditrecord").fetchone()[0] > 0
        assert app.execute("SELECT current_setting('session_replication_role')").fetchone()[0] == "origin"
    assert AuditRecord.objects.get(pk=record.pk).summary == record.summary
    assert audit_verify().ok


def test_the_roles_sql_can_be_printed_for_a_database_administrator(demo):
    out = io.StringIO()
    call_command("database_roles", create=True, print_only=True, app_password="s3cret", stdout=out)
    sql = out.getvalue()
    assert 'CREATE ROLE "handoff_app" LOGIN NOSUPERUSER' in sql
    assert "GRANT SELECT, INSERT ON %I TO %I', 'review_auditrecord', 'handoff_app'" in sql
    assert "REVOKE ALL ON %I FROM %I', 'review_auditcheckpoint', 'handoff_app'" in sql
    assert "OWNER TO" in sql


def test_the_suite_runs_as_the_restricted_role_when_asked(demo):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_setting('is_superuser')")
        user, superuser = cursor.fetchone()
    if RUN_AS_APP_ROLE:
        assert (user, superuser) == (app_role_name(), "off")
    else:
        assert superuser == "on"


# --- retention ----------------------------------------------------------------------------------


def _archive(**kwargs):
    """Archiving deletes from the trail, which only the owner role may (never the app's role)."""
    with as_database_superuser():
        return audit_archive(**kwargs)


def test_retention_keeps_twelve_months_online_and_archives_daily():
    assert settings.AUDIT_RETENTION_DAYS == 365
    assert settings.CELERY_BEAT_SCHEDULE["audit-archive-daily"]["task"] == "review.audit.tasks.audit_archive_daily"
    assert settings.CELERY_BEAT_SCHEDULE["audit-archive-daily"]["schedule"] == 24 * 3600.0


def test_archiving_moves_old_records_to_a_verifiable_file_and_verification_still_passes(journey, capsys):
    tasks.audit_checkpoint()
    chain = journey_chain(journey.pk)
    before = list(AuditRecord.objects.filter(chain=chain).order_by("seq").values_list("seq", "hash"))
    assert _archive(cutoff=timezone.now() - timedelta(days=1)) is None  # nothing that old
    archive = _archive(cutoff=timezone.now() + timedelta(seconds=1))
    assert archive is not None and archive.heads[chain] == list(before[-1])
    assert not AuditRecord.objects.filter(chain=chain).exists()
    path = Path(settings.AUDIT_ARCHIVE_DIR) / archive.file_name
    report = verify_file(str(path))
    assert report["ok"], report["problems"]
    assert report["records"] == archive.records and report["whole_chains"] >= 1
    # The chain goes on from the archived head, and the whole trail still verifies.
    audit_append(chain=chain, kind="note", summary="after the archive", journey_id=journey.pk)
    follow = _tail(journey)
    assert (follow.seq, follow.prev_hash) == (before[-1][0] + 1, before[-1][1])
    tasks.audit_checkpoint()
    call_command("verify_audit")
    assert "intact" in capsys.readouterr().out
    # A second archive continues where the first stopped, and its file proves that part.
    second = _archive(cutoff=timezone.now() + timedelta(seconds=1))
    assert verify_file(str(Path(settings.AUDIT_ARCHIVE_DIR) / second.file_name))["ok"]
    assert audit_verify().ok


def test_an_archive_file_edited_afterwards_fails_and_a_forged_archive_row_is_caught(journey):
    archive = _archive(cutoff=timezone.now() + timedelta(seconds=1))
    path = Path(settings.AUDIT_ARCHIVE_DIR) / archive.file_name
    path.write_text(path.read_text().replace("Why this fee?", "Why that fee?"))
    assert not verify_file(str(path))["ok"]
    # Someone with the owner role inserts an unsigned "archived up to" row to delete records.
    other = journey_start(definition="fee_refund", customer_ref="CUST-00002", message="Another")
    head = _tail(other)
    with as_database_superuser() as cursor:
        cursor.execute(
            "INSERT INTO review_auditarchive (seq, at, cutoff, heads, records, file_name, file_sha256, prev_hash,"
            " hash, signature, key_id) VALUES (%s, now(), now(), %s, 0, '', '', %s, 'x', 'x', 'x')",
            [archive.seq + 1, json.dumps({journey_chain(other.pk): [head.seq, head.hash]}), archive.hash],
        )
        cursor.execute("DELETE FROM review_auditrecord WHERE chain = %s", [journey_chain(other.pk)])
    result = audit_verify(use_sink=False)
    assert any("archive" in str(b) and "signature" in str(b) for b in result.breaks)


def test_the_application_role_cannot_archive_and_nothing_is_written(journey, caplog):
    with as_database_superuser():
        call_command("database_roles", create=True, app_role=app_role_name(), owner_role="postgres", verbosity=0)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'SET LOCAL ROLE "{app_role_name()}"')
        assert tasks.audit_archive_daily() == 0
        with pytest.raises(CommandError, match="owner role"):
            call_command("archive_audit", days=1)
    assert "owner role" in caplog.text
    assert not AuditArchive.objects.exists()
    assert not Path(settings.AUDIT_ARCHIVE_DIR).exists() or not any(Path(settings.AUDIT_ARCHIVE_DIR).iterdir())


def test_the_database_refuses_to_delete_records_no_archive_covers(journey):
    _archive(cutoff=timezone.now() + timedelta(seconds=1))
    other = journey_start(definition="fee_refund", customer_ref="CUST-00002", message="Another")
    with pytest.raises(Exception, match=r"append-only|permission denied"), as_database_superuser() as cursor:
        cursor.execute("DELETE FROM review_auditrecord WHERE chain = %s", [journey_chain(other.pk)])


# --- logging health -----------------------------------------------------------------------------


def _break_audit_writes() -> None:
    """Make every audit insert fail, as a full disk or a lost privilege would."""
    with as_database_superuser() as cursor:
        cursor.execute(
            "CREATE FUNCTION pg_temp.audit_down() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit storage unavailable'; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER audit_down BEFORE INSERT ON review_auditrecord "
            "FOR EACH ROW EXECUTE FUNCTION pg_temp.audit_down()"
        )


def test_an_action_whose_audit_record_cannot_be_written_does_not_happen(client, supervisor, journey):
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00002", message="A charge")
    events_before = Event.objects.filter(journey=journey).count()
    _break_audit_writes()
    client.force_login(supervisor)
    response = client.post(reverse("journey_take_over", args=[journey.pk]))
    assert response.status_code == 503
    assert "nothing was changed" in response.content.decode()
    after = Journey.objects.get(pk=journey.pk)
    assert (after.status, after.epoch, after.controller_user_id) == (journey.status, journey.epoch, None)
    assert Event.objects.filter(journey=journey).count() == events_before
    with pytest.raises(AuditWriteError):
        journey_start(definition="fee_refund", customer_ref="CUST-00003", message="A fee")
    assert not Journey.objects.filter(customer_ref="CUST-00003").exists()


def test_beat_verifies_the_trail_daily(journey):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-verify-daily"]
    assert entry["task"] == "review.audit.tasks.audit_verify_daily"
    assert entry["schedule"] == 24 * 3600.0
    verification = AuditVerification.objects.get(pk=tasks.audit_verify_daily())
    assert verification.scheduled and verification.status == AuditVerification.Status.PASSED


def test_a_failed_daily_run_shows_on_every_compliance_and_admin_page_until_acknowledged(
    client, compliance, admin_user, supervisor, journey
):
    tail = _tail(journey)
    with as_database_superuser() as cursor:
        cursor.execute("ALTER TABLE review_auditrecord DISABLE TRIGGER review_auditrecord_append_only")
        cursor.execute("UPDATE review_auditrecord SET summary = 'forged' WHERE id = %s", [tail.pk])
        cursor.execute("ALTER TABLE review_auditrecord ENABLE TRIGGER review_auditrecord_append_only")
    failed = AuditVerification.objects.get(pk=tasks.audit_verify_daily())
    assert failed.status == AuditVerification.Status.BROKEN
    for user in (compliance, admin_user):
        client.force_login(user)
        for url in (reverse("home"), reverse("audit:search"), reverse("journey_list")):
            page = client.get(url, follow=True).content.decode()
            assert 'id="audit-alert"' in page and f"record {tail.pk}" in page, (user, url)
    client.force_login(supervisor)  # no audit right, no admin: not told, may not acknowledge
    assert 'id="audit-alert"' not in client.get(reverse("journey_list")).content.decode()
    ack = reverse("audit:verify_acknowledge", args=[failed.pk])
    assert client.post(ack, {"note": "Investigating with the DBA"}).status_code == 404
    client.force_login(compliance)
    assert client.post(ack, {"note": "ok"}).status_code == 400
    assert client.post(ack, {"note": "Investigating with the DBA"}).status_code == 302
    assert client.post(ack, {"note": "Investigating with the DBA"}).status_code == 409
    assert 'id="audit-alert"' not in client.get(reverse("journey_list")).content.decode()
    record = AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN, kind="verification_acknowledged").get()
    assert record.actor_label == "compliance" and record.payload["note"] == "Investigating with the DBA"
    assert AuditVerification.objects.get(pk=failed.pk).acknowledged_by == compliance
    assert AuditArchive.objects.count() == 0


def test_production_roles_migrate_as_the_owner_and_run_the_app_as_a_role_that_cannot_undo_the_triggers():
    """The whole production set-up on a fresh database: roles created by a superuser, migrations
    run through MIGRATION_DATABASE_URL as the owner, the demo seeded and verified as the app."""
    base = settings.DATABASES["default"]
    host, port = base.get("HOST") or "127.0.0.1", str(base.get("PORT") or 5432)
    name = f"{base['NAME']}_roles"
    owner, app = f"{name}_owner", f"{name}_app"

    def url(user: str) -> str:
        return f"postgres://{user}@{host}:{port}/{name}"

    def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            capture_output=True,
            text=True,
            cwd=Path(settings.BASE_DIR),
            env={**os.environ, "HANDOFF_DEMO": "true", **env},
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    superuser = psycopg.connect(host=host, port=port, user=base["USER"], dbname="postgres", autocommit=True)
    try:
        superuser.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        superuser.execute(f'CREATE DATABASE "{name}"')
        manage("database_roles", "--create", "--owner-role", owner, "--app-role", app, DATABASE_URL=url(base["USER"]))
        manage("migrate", "--no-input", "-v", "0", DATABASE_URL=url(app), MIGRATION_DATABASE_URL=url(owner))
        manage("seed_demo", "--customers", "2", DATABASE_URL=url(app))
        manage("export_audit_checkpoints", "--output", os.devnull, DATABASE_URL=url(app))
        assert "intact" in manage("verify_audit", "--no-sink", DATABASE_URL=url(app)).stdout
        with psycopg.connect(host=host, port=port, user=app, dbname=name, autocommit=True) as conn:
            owners = conn.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
            assert owners == [(owner,)]
            assert conn.execute("SELECT count(*) FROM review_auditrecord").fetchone()[0] > 0
            for statement, error in (
                ("ALTER TABLE review_auditrecord DISABLE TRIGGER ALL", "must be owner"),
                ("TRUNCATE review_auditrecord", "permission denied"),
                ("SET session_replication_role = replica", "permission denied"),
                ("UPDATE review_auditcheckpoint SET signature = 'x'", "permission denied"),
            ):
                with pytest.raises(psycopg.Error, match=error):
                    conn.execute(statement)
    finally:
        superuser.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in (owner, app):
            superuser.execute(f'DROP ROLE IF EXISTS "{role}"')
        superuser.close()
