"""Exports that cannot be forged or shortened: per-value commitments, a manifest, signed heads."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from journeys.models import Journey
from journeys.services import journey_start
from review.audit import offline
from review.audit.chain import audit_append, checkpoint_create
from review.audit.export import Export
from review.audit.offline import leaf_commitment, read_export, verify_rows
from review.audit.sink import checkpoint_publish
from review.models import AuditRecord, SensitiveDataGrant
from review.models.audit import GOVERNANCE_CHAIN, journey_chain

SECRET_CARD = "4000111122223333"
SECRET_DOB = "1984-02-29"


@pytest.fixture
def journey(demo) -> Journey:
    journey = journey_start(definition="card_dispute", customer_ref="CUST-00002", message="A charge I do not know")
    audit_append(
        chain=journey_chain(journey.pk),
        kind="agent_note",
        summary="looked up the customer",
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        payload={"data": {"card": SECRET_CARD, "date_of_birth": SECRET_DOB, "amount": "80.00", "note": "ok"}},
    )
    audit_append(
        chain=journey_chain(journey.pk),
        kind="agent_note",
        summary="last word",
        journey_id=journey.pk,
        definition_id=journey.definition_id,
        payload={"data": {"note": "closing"}},
    )
    return journey


def _export_lines(journey: Journey, *, masked: bool = True) -> list[str]:
    checkpoint_create()
    records = AuditRecord.objects.filter(journey_id=journey.pk)
    export = Export(records, may_unmask=lambda r: not masked, whole_chain=journey_chain(journey.pk))
    return "".join(export.jsonl()).splitlines(keepends=True)


def _write(tmp_path: Path, lines: list[str], name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _offline(path: Path, *extra: str) -> subprocess.CompletedProcess:
    """The verifier as a third party runs it: the standard library only, no Handoff."""
    return subprocess.run(
        [sys.executable, "-I", "-S", str(Path(offline.__file__)), str(path), *extra],
        capture_output=True,
        text=True,
        cwd=path.parent,
    )


def _sensitive_row(lines: list[str]) -> tuple[int, dict]:
    for index, line in enumerate(lines):
        row = json.loads(line)
        if row.get("commitments"):
            return index, row
    raise AssertionError("no masked row in the export")


def test_a_masked_export_verifies_offline_without_revealing_or_leaking_the_salt(journey, tmp_path):
    lines = _export_lines(journey)
    text = "".join(lines)
    assert SECRET_CARD not in text and SECRET_DOB not in text
    _, row = _sensitive_row(lines)
    assert row["payload_salt"] == ""
    # The commitment is salted: hashing a guessed date of birth does not find it.
    assert leaf_commitment(SECRET_DOB) not in row["commitments"].values()
    path = _write(tmp_path, lines)
    result = _offline(path)
    assert result.returncode == 0, result.stdout
    assert "1 proven whole" in result.stdout


def test_an_edited_value_flagged_as_masked_no_longer_verifies(journey, tmp_path):
    """The reported forgery: change a payload and set payload_masked; it used to pass."""
    lines = _export_lines(journey)
    index, row = _sensitive_row(lines)
    row["payload"]["data"]["amount"] = "8000.00"
    row["payload_masked"] = True
    lines[index] = json.dumps(row) + "\n"
    path = _write(tmp_path, lines)
    result = _offline(path)
    assert result.returncode == 1
    assert "payload does not match its digest" in result.stdout
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_audit_export", str(path), stderr=io.StringIO())


def test_a_masked_value_cannot_be_swapped_through_its_commitment(journey, tmp_path):
    lines = _export_lines(journey)
    index, row = _sensitive_row(lines)
    name = next(iter(row["commitments"]))
    row["commitments"][name] = leaf_commitment("something else", "0" * 64)
    lines[index] = json.dumps(row) + "\n"
    assert _offline(_write(tmp_path, lines)).returncode == 1


def test_a_clear_payload_without_its_salt_cannot_pass_as_verified(journey, tmp_path):
    lines = _export_lines(journey, masked=False)
    index = next(i for i, line in enumerate(lines) if SECRET_CARD in line)
    unmasked = json.loads(lines[index])
    assert unmasked["payload"]["data"]["card"] == SECRET_CARD
    unmasked["payload_salt"] = ""
    lines[index] = json.dumps(unmasked) + "\n"
    result = _offline(_write(tmp_path, lines))
    assert result.returncode == 1
    assert "neither in the clear with its salt nor committed" in result.stdout


def test_deleting_a_middle_line_of_a_whole_journey_export_fails(journey, tmp_path):
    lines = _export_lines(journey)
    del lines[2]
    path = _write(tmp_path, lines)
    result = _offline(path)
    assert result.returncode == 1
    assert "claims the whole chain" in result.stdout
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_audit_export", str(path), stderr=io.StringIO())


def test_deleting_the_last_record_line_fails_against_the_signed_head(journey, tmp_path):
    lines = _export_lines(journey)
    del lines[-2]  # the last record; the manifest stays
    result = _offline(_write(tmp_path, lines))
    assert result.returncode == 1
    assert "missing" in result.stdout


def test_an_export_cut_before_its_manifest_fails(journey, tmp_path):
    lines = _export_lines(journey)
    result = _offline(_write(tmp_path, lines[:-1]))
    assert result.returncode == 1
    assert "no manifest" in result.stdout


def test_a_manifest_that_no_longer_claims_the_whole_chain_still_checks_the_signed_head(journey, tmp_path):
    lines = _export_lines(journey)
    manifest = json.loads(lines[-1])
    for claim in manifest["manifest"]["chains"].values():
        claim["complete"] = False
    lines[-1] = json.dumps(manifest) + "\n"
    last = json.loads(lines[-2])
    last["summary"] = "rewritten"
    lines[-2] = json.dumps(last) + "\n"
    assert _offline(_write(tmp_path, lines)).returncode == 1


def test_a_rewritten_checkpoint_in_the_export_is_caught_by_its_hash_the_key_and_the_outside_copy(journey, tmp_path):
    lines = _export_lines(journey)
    checkpoint_publish()
    # Shorten the export and move the signed head back to match, re-hashing the checkpoint.
    del lines[-2]
    manifest = json.loads(lines[-1])
    chain = journey_chain(journey.pk)
    checkpoint = manifest["manifest"]["chains"][chain]["checkpoint"]
    previous = json.loads(lines[-2])
    checkpoint["heads"][chain] = [previous["seq"], previous["hash"]]
    lines[-1] = json.dumps(manifest) + "\n"
    result = _offline(_write(tmp_path, lines))
    assert "does not match its hash" in result.stdout
    checkpoint["hash"] = offline.checkpoint_hash(checkpoint)
    lines[-1] = json.dumps(manifest) + "\n"
    path = _write(tmp_path, lines)
    # Without the key or the outside copy the forgery would look consistent…
    assert _offline(path).returncode == 0
    # …with the outside copy of the checkpoints it does not, nor with Handoff's key.
    sink = tmp_path / "checkpoint-sink" / "checkpoints.jsonl"
    result = _offline(path, "--checkpoints", str(sink))
    assert result.returncode == 1 and "differs from the outside copy" in result.stdout
    with pytest.raises(CommandError, match="does not verify"):
        call_command("verify_audit_export", str(path), stderr=io.StringIO())


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_every_export_carries_the_signed_checkpoint_of_each_chain(client, compliance, journey, fmt):
    other = journey_start(definition="fee_refund", customer_ref="CUST-00003", message="A fee")
    client.force_login(compliance)
    body = b"".join(client.get(reverse(f"audit:export_{fmt}")).streaming_content).decode()
    rows = list(read_export(body.splitlines(keepends=True), fmt))
    manifest = rows[-1]["manifest"]
    chains = {row["chain"] for row in rows[:-1]}
    assert {journey_chain(journey.pk), journey_chain(other.pk), GOVERNANCE_CHAIN} <= chains
    assert set(manifest["chains"]) == chains
    for chain, claim in manifest["chains"].items():
        assert claim["checkpoint"]["heads"][chain][1]
        assert claim["complete"] is False
    report = verify_rows(rows)
    assert report["ok"], report["problems"]


def test_exports_are_masked_by_default_even_for_people_who_may_unmask(client, compliance, journey):
    client.force_login(compliance)
    assert SensitiveDataGrant.objects.filter(team__name="Compliance").exists()
    for name in ("audit:journey_export_jsonl", "audit:journey_export_csv"):
        body = b"".join(client.get(reverse(name, args=[journey.pk])).streaming_content).decode()
        assert SECRET_CARD not in body and SECRET_DOB not in body


def test_an_unmasked_export_needs_the_right_a_reason_and_leaves_an_audit_record(
    client, compliance, supervisor2, journey
):
    url = reverse("audit:journey_export_jsonl", args=[journey.pk])
    client.force_login(compliance)
    assert client.post(url, {"reason": ""}).status_code == 400
    assert client.post(url, {"reason": "ok"}).status_code == 400
    response = client.post(url, {"reason": "Chargeback evidence for the card scheme"})
    assert response.status_code == 200
    assert "unmasked" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode()
    assert SECRET_CARD in body
    report = verify_rows(read_export(body.splitlines(keepends=True), "jsonl"))
    assert report["ok"] and report["whole_chains"] == 1, report["problems"]
    record = AuditRecord.objects.filter(chain=GOVERNANCE_CHAIN, kind="audit_export").order_by("-id").first()
    assert record.actor_label == "compliance"
    assert record.payload["unmasked"] is True
    assert record.payload["reason"] == "Chargeback evidence for the card scheme"
    # Without the unmask right: refused, and a foreign team does not even see the journey.
    SensitiveDataGrant.objects.filter(team__name="Compliance").delete()
    assert client.post(url, {"reason": "Chargeback evidence for the card scheme"}).status_code == 403
    client.force_login(supervisor2)
    assert client.post(url, {"reason": "Chargeback evidence for the card scheme"}).status_code == 404


def test_a_search_export_unmasks_only_where_the_person_may(client, compliance, journey):
    fee = journey_start(definition="fee_refund", customer_ref="CUST-00003", message="A fee")
    audit_append(
        chain=journey_chain(fee.pk),
        kind="agent_note",
        summary="address",
        journey_id=fee.pk,
        definition_id=fee.definition_id,
        payload={"address": "1 High Street, Leeds LS1 1AA"},
    )
    SensitiveDataGrant.objects.filter(team__name="Compliance", definition=fee.definition).delete()
    client.force_login(compliance)
    response = client.post(reverse("audit:export_jsonl"), {"reason": "Regulator asked for the evidence"})
    body = b"".join(response.streaming_content).decode()
    assert SECRET_CARD in body
    assert "1 High Street" not in body
    assert verify_rows(read_export(body.splitlines(keepends=True), "jsonl"))["ok"]
