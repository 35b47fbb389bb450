"""Signed decisions: signatures made by ``ssh-keygen -Y sign`` (git's SSH signature format) are
checked by our own verifier against an allowed-signers file, agreeing with ``ssh-keygen -Y
verify``; a decision can be signed from the shell; ``audit verify`` says who signed what, names
a forged signature even when the whole log and its git heads were rewritten (what the chain alone
cannot see), and refuses an unsigned decision where the task requires signatures."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import progenitor
from progenitor.errors import UserError
from progenitor.options import RunOptions
from progenitor.oversight import signatures
from progenitor.oversight.audit import AUDIT_REF, GENESIS, _digest, audit_log
from progenitor.oversight.audit_heads import Head, record_head
from progenitor.oversight.signatures import AllowedSigners, SignatureError
from progenitor.testing import make_repo, scripted, toy_task_files
from tests.helpers.gating import OPTIONS, cli

CLOSER = scripted([[{"hypothesis": "closer to 3", "params": {"w": 2.9}}]])


def keypair(where: Path, name: str, kind: str = "ed25519") -> tuple[Path, str]:
    """A private key file, and its public key line (``type base64``)."""
    key = where / f"{name}_{kind.replace(' ', '')}"
    subprocess.run(["ssh-keygen", "-q", "-t", *kind.split(), "-N", "", "-f", str(key), "-C", name], check=True)
    return key, " ".join(Path(f"{key}.pub").read_text().split()[:2])


def ssh_sign(key: Path, message: bytes, namespace: str = signatures.NAMESPACE) -> str:
    return subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", namespace], input=message,
                          capture_output=True, check=True).stdout.decode()


def ssh_verify(allowed: Path, who: str, sig: str, message: bytes, tmp: Path) -> bool:
    (tmp / "sig").write_text(sig)
    return subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", who, "-n", signatures.NAMESPACE,
                           "-s", str(tmp / "sig")], input=message, capture_output=True).returncode == 0


@pytest.mark.loop
@pytest.mark.parametrize("kind", ["ed25519", "ecdsa -b 256", "ecdsa -b 521", "rsa -b 3072"])
def test_our_verifier_agrees_with_ssh_keygen_on_good_and_bad_signatures(tmp_path, kind):
    key, public = keypair(tmp_path, "alice", kind)
    allowed = tmp_path / "allowed_signers"
    allowed.write_text(f"alice {public}\n")
    signers = AllowedSigners.load(allowed)
    message = signatures.statement(run="r1", gate="g1/promotion", payload_sha256="ab" * 32, decision="approve",
                                   by="human:alice", comment="two lines\nof comment")
    sig = ssh_sign(key, message)
    assert ssh_verify(allowed, "alice", sig, message, tmp_path)
    assert signatures.check(sig, message, "human:alice", signers).fingerprint.startswith("SHA256:")
    altered = message.replace(b"approve", b"reject ")
    assert not ssh_verify(allowed, "alice", sig, altered, tmp_path)
    with pytest.raises(SignatureError, match="does not match what it claims to sign"):
        signatures.check(sig, altered, "human:alice", signers)
    with pytest.raises(SignatureError, match="belongs to alice, not to bob"):
        signatures.check(sig, message, "human:bob", signers)
    commit_sig = ssh_sign(key, message, namespace="git")
    with pytest.raises(SignatureError, match="made for 'git'"):
        signatures.check(commit_sig, message, "human:alice", signers)


def test_the_allowed_signers_options_are_honoured(tmp_path):
    alice, alice_pub = keypair(tmp_path, "alice")
    bob, bob_pub = keypair(tmp_path, "bob")
    eve, _ = keypair(tmp_path, "eve")
    allowed = tmp_path / "allowed"
    allowed.write_text(
        "# the team\n\n"
        f'*@example.org,!mallory@example.org namespaces="progenitor-decision" {alice_pub} alice\n'
        f'bob namespaces="git" {bob_pub}\n'
        f'carol valid-after="20200101",valid-before="20200201" {bob_pub}\n'
        f"dan cert-authority {bob_pub}\n"
        "broken line\n")
    signers = AllowedSigners.load(allowed)
    assert len(signers.signers) == 3 and len(signers.skipped) == 2
    message = b"m"
    sig = signatures.verify(ssh_sign(alice, message), message)
    assert signers.allows("ann@example.org", sig) is None
    assert "not to mallory@example.org" in signers.allows("mallory@example.org", sig)
    bobs = signatures.verify(ssh_sign(bob, message), message)
    assert "not for 'progenitor-decision'" in signers.allows("bob", bobs)
    from datetime import datetime, timezone

    assert signers.allows("carol", bobs, datetime(2020, 1, 15, tzinfo=timezone.utc)) is None
    assert "was not valid for carol" in signers.allows("carol", bobs, datetime(2021, 1, 1, tzinfo=timezone.utc))
    eves = signatures.verify(ssh_sign(eve, message), message)
    assert "is not in the allowed signers" in signers.allows("eve", eves)


@pytest.mark.parametrize("text, says", [
    ("hello", "not an SSH signature"),
    ("-----BEGIN SSH SIGNATURE-----\n!!!\n-----END SSH SIGNATURE-----", "not valid base64"),
    ("-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----", "cut short"),
    ("-----BEGIN SSH SIGNATURE-----\n" + "A" * 20_000 + "\n-----END SSH SIGNATURE-----", "longer than"),
])
def test_malformed_signatures_are_one_sentence_never_a_crash(text, says):
    with pytest.raises(SignatureError, match=says):
        signatures.verify(text, b"m")


# -- signed decisions in a run ---------------------------------------------------------------------
def _signed_repo(tmp_path: Path, required: bool = True) -> tuple[Path, Path, Path]:
    """An approver-mode toy repo whose allowed signers list alice (and whose task may require signatures)."""
    alice, alice_pub = keypair(tmp_path, "alice")
    mallory, _ = keypair(tmp_path, "mallory")
    files = toy_task_files(generations=1, candidates=1, oversight=(
        f"mode: approver, poll_seconds: 0.05, allowed_signers: allowed_signers, require_signatures: {str(required).lower()}"))
    files["allowed_signers"] = f"alice {alice_pub}\n"
    return make_repo(tmp_path / "repo", files), alice, mallory


def _token(repo: Path, name: str, role: str = "approver") -> str:
    from progenitor.oversight import accounts
    from progenitor.oversight.store import DecisionStore

    return accounts.add(DecisionStore(repo), name, role, by="human:test")


def _rewrite_as_the_server(repo: Path, change) -> None:
    """What someone who controls the server can do: edit entries, rechain them, and rewrite the
    heads in git to match. The chain and the heads then agree; only a signature can object."""
    log = audit_log(repo)
    entries = log.entries()
    change(entries)
    prev = GENESIS
    for seq, entry in enumerate(entries):
        entry.pop("hash", None)
        entry.update(seq=seq, prev=prev)
        entry["hash"] = prev = _digest(entry)
    log.path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in entries))
    subprocess.run(["git", "-C", str(repo), "update-ref", "-d", AUDIT_REF], check=True)
    for e in entries:
        record_head(repo, Head(seq=e["seq"], hash=e["hash"], key=e["key"]), "rewritten")


@pytest.mark.loop
def test_a_signed_decision_verifies_and_a_forged_one_is_named_even_after_the_log_is_rewritten_whole(tmp_path):
    repo, alice, mallory = _signed_repo(tmp_path)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=CLOSER)
    token = _token(repo, "alice")
    with pytest.raises(UserError, match="needs a signed decision"):
        progenitor.decide(summary.run_id, "approve", by="alice", repo=repo)
    refused = cli("approve", summary.run_id, "--repo", str(repo), "--sign", str(mallory), check=False,
                  env={"PROGENITOR_TOKEN": token})
    assert refused.returncode == 2 and "does not count for human:alice" in refused.stderr, "mallory's key is not alice's"
    done = cli("approve", summary.run_id, "--repo", str(repo), "--sign", str(alice), "--comment", "checked the diff",
               env={"PROGENITOR_TOKEN": token})
    assert "approve by human:alice recorded (signed)" in done.stdout
    verified = cli("audit", "verify", "--repo", str(repo))
    assert verified.returncode == 0 and "1 signed decision(s) verified" in verified.stdout
    assert "approve g1/promotion of run" in verified.stdout and "by human:alice, signed with ssh-ed25519 SHA256:" \
        in verified.stdout and ": verified" in verified.stdout

    def flip(entries):  # the server's owner turns alice's approval into her rejection
        entry = next(e for e in entries if e.get("signature"))
        entry.update(action="reject", comment="rejected after all")

    _rewrite_as_the_server(repo, flip)
    chain_only = audit_log(repo).verify()
    assert chain_only.git_heads == chain_only.entries and "hash" not in chain_only.problem, \
        "chain and heads agree with the rewrite: only the signature objects"
    assert "forged, or made for another decision" in chain_only.problem
    forged = cli("audit", "verify", "--repo", str(repo), check=False)
    assert forged.returncode == 1 and "FORGED" in forged.stdout
    [line] = [x for x in forged.stderr.splitlines() if x.strip()]
    assert "reject g1/promotion" in line and "by human:alice" in line and "forged, or made for another decision" in line


@pytest.mark.loop
def test_an_unsigned_decision_where_signatures_are_required_is_refused_by_audit_verify(tmp_path):
    repo, alice, _ = _signed_repo(tmp_path)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=CLOSER)
    message = progenitor.api.decide  # the one decide; signing through the statement it checks
    from progenitor.oversight.decide import find_gate, statement
    from progenitor.oversight.store import DecisionStore

    gate = find_gate(DecisionStore(repo), summary.run_id, None)
    sig = ssh_sign(alice, statement(gate, "approve", "human:alice", "", None))
    message(summary.run_id, "approve", by="alice", repo=repo, signature=sig)
    assert progenitor.verify_audit(repo).ok

    def strip(entries):
        next(e for e in entries if e.get("signature")).pop("signature")

    _rewrite_as_the_server(repo, strip)
    result = progenitor.verify_audit(repo)
    assert not result.ok and result.unsigned_required and "is not signed, and its task requires signatures" \
        in result.problem


@pytest.mark.loop
def test_a_signature_given_without_a_requirement_is_still_checked_and_recorded(tmp_path):
    repo, alice, mallory = _signed_repo(tmp_path, required=False)
    summary = progenitor.start_run(repo, RunOptions(**OPTIONS), detach=True, architect=CLOSER)
    from progenitor.oversight.decide import find_gate, statement
    from progenitor.oversight.store import DecisionStore

    gate = find_gate(DecisionStore(repo), summary.run_id, None)
    with pytest.raises(SignatureError, match="does not match"):  # signed a rejection, sent as an approval
        progenitor.decide(summary.run_id, "approve", by="alice", repo=repo,
                          signature=ssh_sign(alice, statement(gate, "reject", "human:alice", "", None)))
    recorded = progenitor.decide(summary.run_id, "approve", by="alice", repo=repo,
                                 signature=ssh_sign(alice, statement(gate, "approve", "human:alice", "", None)))
    assert recorded.signature.startswith("-----BEGIN SSH SIGNATURE-----")
    [signed] = progenitor.verify_audit(repo).signed
    assert signed.ok and signed.actor == "human:alice" and signed.key.startswith("ssh-ed25519 SHA256:")
