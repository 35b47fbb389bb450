"""Signed decisions: a person signs the statement of their decision with their own SSH key, in
the format ``ssh-keygen -Y sign`` writes and git uses for SSH-signed commits (OpenSSH's
``PROTOCOL.sshsig``), and anyone checks it against an allowed-signers file (``ssh-keygen(1)``'s
ALLOWED SIGNERS format, git's ``gpg.ssh.allowedSignersFile``).

- ``statement`` is the text signed: the run, the gate, the SHA-256 of the request the person was
  shown, the decision, the decider, the edited values and the comment. The audit entry of the
  decision holds every one of those, so the statement is rebuilt from the entry to check it.
- ``sign`` asks ``ssh-keygen -Y sign`` (the person's own tool: their agent, their passphrase).
- ``verify`` is ours: it parses the armoured SSHSIG blob, checks magic, version, namespace and
  hash, and checks the signature with the public key (Ed25519, ECDSA P-256/384/521, RSA with
  SHA-2) through ``cryptography``; then ``AllowedSigners.allows`` says whether that key may sign
  for that person (principal patterns, ``namespaces=``, ``valid-after`` / ``valid-before``).

A signature proves that the holder of the key allowed for a name signed exactly that decision
about exactly that payload; it does not prove when (the log's time is the server's word).
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import struct
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel

from progenitor.errors import UserError

__all__ = ["NAMESPACE", "AllowedSigners", "Signature", "SignatureError", "parse", "sign", "statement", "verify"]

NAMESPACE = "progenitor-decision"
"""The SSHSIG namespace of a decision: a signature made for anything else (a git commit, a file)
does not pass for one."""
MAX_ARMOURED = 16_384
"""Characters of an armoured signature read at most (an RSA-16384 one is about 5,000)."""
_BEGIN, _END = "-----BEGIN SSH SIGNATURE-----", "-----END SSH SIGNATURE-----"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}


class SignatureError(UserError):
    """A signature that is malformed, or does not verify."""


def statement(*, run: str, gate: str, payload_sha256: str, decision: str, by: str, comment: str = "",
              edits: Optional[dict] = None) -> bytes:
    """The exact bytes a person signs for a decision (and that the audit entry lets anyone rebuild)."""
    for name, value in (("run", run), ("gate", gate), ("by", by), ("decision", decision)):
        if "\n" in value or "\r" in value:
            raise UserError(f"the decision's {name} may not hold a line break")
    lines = ["progenitor decision v1", f"run: {run}", f"gate: {gate}", f"payload-sha256: {payload_sha256}",
             f"decision: {decision}", f"by: {by}", f"edits: {json.dumps(edits or {}, sort_keys=True)}",
             "comment:", comment]
    return "\n".join(lines).encode("utf-8")


def sign(message: bytes, key: Path, namespace: str = NAMESPACE) -> str:
    """``message`` signed with the private key file ``key`` by ``ssh-keygen -Y sign`` (armoured)."""
    try:
        done = subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", str(key), "-n", namespace],
                              input=message, capture_output=True, timeout=120)
    except FileNotFoundError:
        raise UserError("signing needs ssh-keygen (OpenSSH 8.1 or later) on the PATH") from None
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise UserError(f"ssh-keygen could not sign with {key}: {why[-1] if why else 'exit ' + str(done.returncode)}")
    return done.stdout.decode()


# -- the SSH wire format ------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.data):
            raise SignatureError("the signature is cut short or malformed")
        out = self.data[self.at:self.at + n]
        self.at += n
        return out

    def uint32(self) -> int:
        return struct.unpack(">I", self.take(4))[0]

    def string(self) -> bytes:
        return self.take(self.uint32())

    def mpint(self) -> int:
        return int.from_bytes(self.string(), "big", signed=True)

    def done(self) -> bool:
        return self.at == len(self.data)


def _string(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


class Signature(BaseModel):
    """An SSHSIG signature, parsed."""

    public_key: bytes
    """The signer's public key blob (SSH wire format)."""
    namespace: str
    hash_algorithm: str
    signature: bytes

    @property
    def key_type(self) -> str:
        return _Reader(self.public_key).string().decode(errors="replace")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)


def fingerprint(blob: bytes) -> str:
    """``SHA256:...`` as ``ssh-keygen -l`` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse(armoured: str) -> Signature:
    """The SSHSIG blob inside an armoured signature; ``SignatureError`` if it is not one."""
    text = (armoured or "").strip()
    if len(text) > MAX_ARMOURED:
        raise SignatureError(f"the signature is longer than {MAX_ARMOURED} characters")
    if not (text.startswith(_BEGIN) and text.endswith(_END)):
        raise SignatureError("not an SSH signature (it must start with '-----BEGIN SSH SIGNATURE-----')")
    body = "".join(text[len(_BEGIN):-len(_END)].split())
    try:
        blob = base64.b64decode(body, validate=True)
    except ValueError:
        raise SignatureError("the SSH signature is not valid base64") from None
    r = _Reader(blob)
    if r.take(6) != b"SSHSIG" or r.uint32() != 1:
        raise SignatureError("not an SSHSIG version 1 signature")
    public_key, namespace, _reserved, hash_alg, sig = r.string(), r.string(), r.string(), r.string(), r.string()
    if not r.done():
        raise SignatureError("the SSH signature has trailing bytes")
    return Signature(public_key=public_key, namespace=namespace.decode(errors="replace"),
                     hash_algorithm=hash_alg.decode(errors="replace"), signature=sig)


def _signed_data(sig: Signature, message: bytes) -> bytes:
    digest = _HASHES[sig.hash_algorithm](message).digest()
    return (b"SSHSIG" + _string(sig.namespace.encode()) + _string(b"") + _string(sig.hash_algorithm.encode())
            + _string(digest))


def _check(public_key: bytes, sig_blob: bytes, data: bytes) -> bool:
    """Does ``sig_blob`` (SSH signature encoding) sign ``data`` with ``public_key``?"""
    from cryptography.exceptions import InvalidSignature

    key, fmt = _Reader(public_key), _Reader(sig_blob)
    key_type, sig_type, raw = key.string().decode(errors="replace"), fmt.string().decode(errors="replace"), fmt.string()
    try:
        if key_type == "ssh-ed25519" and sig_type == "ssh-ed25519":
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

            Ed25519PublicKey.from_public_bytes(key.string()).verify(raw, data)
            return True
        if key_type.startswith("ecdsa-sha2-nistp") and sig_type == key_type:
            return _check_ecdsa(key, raw, data)
        if key_type == "ssh-rsa" and sig_type in ("rsa-sha2-256", "rsa-sha2-512"):
            return _check_rsa(key, sig_type, raw, data)
    except (InvalidSignature, ValueError):
        return False
    raise SignatureError(f"a {key_type} key signing as {sig_type} is not supported (Ed25519, ECDSA, RSA with SHA-2 are)")


def _check_ecdsa(key: _Reader, raw: bytes, data: bytes) -> bool:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    curves = {b"nistp256": (ec.SECP256R1(), hashes.SHA256()), b"nistp384": (ec.SECP384R1(), hashes.SHA384()),
              b"nistp521": (ec.SECP521R1(), hashes.SHA512())}
    name = key.string()
    if name not in curves:
        raise SignatureError(f"unknown ECDSA curve {name!r}")
    curve, digest = curves[name]
    public = ec.EllipticCurvePublicKey.from_encoded_point(curve, key.string())
    parts = _Reader(raw)
    public.verify(encode_dss_signature(parts.mpint(), parts.mpint()), data, ec.ECDSA(digest))
    return True


def _check_rsa(key: _Reader, sig_type: str, raw: bytes, data: bytes) -> bool:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    e, n = key.mpint(), key.mpint()
    if n.bit_length() < 2048:
        raise SignatureError(f"an RSA key of {n.bit_length()} bits is too weak to sign a decision (2048 at least)")
    digest = hashes.SHA256() if sig_type == "rsa-sha2-256" else hashes.SHA512()
    rsa.RSAPublicNumbers(e, n).public_key().verify(raw, data, padding.PKCS1v15(), digest)
    return True


def verify(armoured: str, message: bytes, namespace: str = NAMESPACE) -> Signature:
    """The parsed signature if it is a good signature of ``message`` in ``namespace``, by the key
    it carries (whether that key may sign for someone is ``AllowedSigners.allows``'s question)."""
    sig = parse(armoured)
    if sig.namespace != namespace:
        raise SignatureError(f"the signature was made for {sig.namespace!r}, not for {namespace!r}")
    if sig.hash_algorithm not in _HASHES:
        raise SignatureError(f"the signature uses hash {sig.hash_algorithm!r} (sha256 or sha512 expected)")
    if not _check(sig.public_key, sig.signature, _signed_data(sig, message)):
        raise SignatureError(f"the signature by {sig.key_type} key {sig.fingerprint} does not match what it claims "
                             f"to sign: forged, or made for another decision")
    return sig


# -- allowed signers -----------------------------------------------------------------------------
class Signer(BaseModel):
    """One line of an allowed-signers file."""

    principals: list[str]
    public_key: bytes
    namespaces: Optional[list[str]] = None
    valid_after: Optional[datetime] = None
    valid_before: Optional[datetime] = None
    line: int


def _tokens(text: str) -> list[str]:
    """Space-separated tokens, a double-quoted part kept whole (``namespaces="a,b"``)."""
    out, current, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
            current += ch
        elif ch.isspace() and not quoted:
            if current:
                out.append(current)
            current = ""
        else:
            current += ch
    if current:
        out.append(current)
    return out


def _options(text: str) -> dict[str, str]:
    found, current, quoted = {}, "", False
    for ch in text + ",":
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            name, _, value = current.partition("=")
            found[name.strip().lower()] = value.strip().strip('"')
            current = ""
            continue
        current += ch
    return found


def _when(value: str) -> datetime:
    text = value.rstrip("Zz")
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
    raise ValueError(f"unreadable time {value!r}")


def _matches(patterns: list[str], name: str) -> bool:
    """OpenSSH's pattern lists: ``*`` and ``?`` wildcards; a ``!pattern`` that matches refuses."""
    hit = False
    for pattern in patterns:
        if pattern.startswith("!"):
            if fnmatch.fnmatchcase(name, pattern[1:]):
                return False
        elif fnmatch.fnmatchcase(name, pattern):
            hit = True
    return hit


def _signer(tokens: list[str], number: int) -> Signer:
    principals = tokens[0].strip('"').split(",")
    rest = tokens[1:]
    options: dict[str, str] = {}
    if rest and not (rest[0].startswith(("ssh-", "ecdsa-", "sk-"))):
        options = _options(rest[0])
        rest = rest[1:]
    if "cert-authority" in options:
        raise ValueError("cert-authority lines are not supported")
    if len(rest) < 2:
        raise ValueError("it needs principals, a key type and a key")
    blob = base64.b64decode(rest[1], validate=True)
    if _Reader(blob).string().decode(errors="replace") != rest[0]:
        raise ValueError(f"the key is not a {rest[0]} key")
    return Signer(principals=principals, public_key=blob, line=number,
                  namespaces=options["namespaces"].split(",") if "namespaces" in options else None,
                  valid_after=_when(options["valid-after"]) if "valid-after" in options else None,
                  valid_before=_when(options["valid-before"]) if "valid-before" in options else None)


class AllowedSigners:
    """An allowed-signers file: who may sign decisions with which key."""

    def __init__(self, signers: list[Signer], where: str = "", skipped: Optional[list[str]] = None):
        self.signers, self.where, self.skipped = signers, where, skipped or []

    @classmethod
    def load(cls, path: Path) -> "AllowedSigners":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as exc:
            raise UserError(f"cannot read the allowed-signers file {path}: {exc.strerror or exc}") from None
        signers, skipped = [], []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                signers.append(_signer(_tokens(line.strip()), number))
            except (ValueError, SignatureError) as exc:
                skipped.append(f"{path.name}:{number}: {exc}")
        return cls(signers, str(path), skipped)

    def allows(self, principal: str, sig: Signature, when: Optional[datetime] = None,
               namespace: str = NAMESPACE) -> Optional[str]:
        """None when ``sig``'s key may sign for ``principal`` in ``namespace`` at ``when``; else why not."""
        keyed = [s for s in self.signers if s.public_key == sig.public_key]
        if not keyed:
            return f"its key {sig.fingerprint} is not in the allowed signers ({self.where})"
        for s in keyed:
            if not _matches(s.principals, principal):
                continue
            if s.namespaces is not None and not _matches(s.namespaces, namespace):
                return f"its key is allowed for {principal} but not for {namespace!r} (line {s.line})"
            if when is not None and ((s.valid_after and when < s.valid_after)
                                     or (s.valid_before and when > s.valid_before)):
                return f"its key was not valid for {principal} at {when:%Y-%m-%d %H:%M} (line {s.line})"
            return None
        owners = sorted({p for s in keyed for p in s.principals})
        return f"its key {sig.fingerprint} belongs to {', '.join(owners)}, not to {principal}"


def principal(actor: str) -> str:
    """The name an allowed-signers file knows a decider by: ``human:alice`` -> ``alice``."""
    return actor.split(":", 1)[1] if actor.startswith("human:") else actor


def check(armoured: str, message: bytes, actor: str, signers: AllowedSigners,
          when: Optional[datetime] = None) -> Signature:
    """The signature, if it signs ``message`` with a key ``signers`` allow for ``actor``; else ``SignatureError``."""
    sig = verify(armoured, message)
    why = signers.allows(principal(actor), sig, when)
    if why:
        raise SignatureError(f"the signature does not count for {actor}: {why}")
    return sig


def load_time(value: Any) -> Optional[datetime]:
    """An audit entry's ISO time, for ``valid-after`` / ``valid-before``."""
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None
