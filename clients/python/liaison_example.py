"""A non-Rust agency system taking part in Liaison, by the wire contract alone.

What it does (docs/wire-contract.md):

1. As school-a, it signs a token with the school's Ed25519 key — header
   exactly alg EdDSA, typ "liaison+jwt", kid the RFC 7638 thumbprint of the
   public key; claims iss, sub, aud, iat, nbf, exp (two minutes), jti — and
   sends a referral (deploy/examples/referral.json, the protobuf JSON mapping)
   as a binary liaison.v1.Envelope on liaison.ingress.school-a.envelope, with
   the token in the Liaison-Token header. It prints the gateway's verdict,
   re-sending with the same envelope id only while the gateway answers
   unavailable or rate_limited, or does not answer.
2. As the police, it reads the police's inbox through the gateway
   (liaison.v1.InboxRead requests on liaison.ingress.police.inbox.next),
   prints each delivery with its number in the police's inbox, checks the
   numbers for gaps, and acknowledges each after printing it
   (liaison.v1.InboxAck on liaison.ingress.police.inbox.ack), until the
   school's referral is among them.

The liaison.v1 Python classes are generated from proto/ at run time by
run_example.sh (grpc_tools.protoc) into a temporary directory on PYTHONPATH.
Exit status: 0 when the referral was accepted and the police read it, 1 when
it was refused or never arrived, 2 on bad arguments.
"""

import argparse
import asyncio
import base64
import hashlib
import os
import sys
import time
import uuid

import jwt
import nats
import nats.errors
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf import json_format

from liaison.v1 import envelope_pb2, labels_pb2

TOKEN_TYPE = "liaison+jwt"
TOKEN_LIFETIME_SECS = 120
TOKEN_HEADER = "Liaison-Token"
RETRYABLE = {"unavailable", "rate_limited"}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_items(data: bytes):
    """The (tag, content) items of a DER sequence's content (short and long lengths)."""
    i = 0
    while i < len(data):
        tag, length = data[i], data[i + 1]
        i += 2
        if length & 0x80:
            count = length & 0x7F
            length = int.from_bytes(data[i : i + count], "big")
            i += count
        yield tag, data[i : i + length]
        i += length


ED25519_ALGORITHM = bytes.fromhex("06032b6570")  # SEQUENCE content: OID 1.3.101.112


def ed25519_from_pkcs8_v2(der: bytes) -> Ed25519PrivateKey:
    """An Ed25519 key from PKCS#8 version 2 (RFC 5958 OneAsymmetricKey, with
    the public key), as `liaison keys gen` writes it: OpenSSL 3.0 and
    `cryptography` read only version 1, so take the 32-byte seed (RFC 8410)
    and check it against the public key the file holds."""
    (tag, body), *_ = der_items(der)
    items = list(der_items(body))
    if tag != 0x30 or len(items) < 3 or items[1] != (0x30, ED25519_ALGORITHM):
        raise ValueError("not an Ed25519 PKCS#8 key")
    (seed_tag, seed), *_ = der_items(items[2][1])
    if items[2][0] != 0x04 or seed_tag != 0x04 or len(seed) != 32:
        raise ValueError("the private key is not a 32-byte Ed25519 seed")
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = [content for t, content in items[3:] if t == 0x81]
    derived = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    if public and public[0][1:] != derived:
        raise ValueError("the public key in the file is not the seed's")
    return key


def load_ed25519_key(path: str) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        pem = f.read()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        try:
            key = ed25519_from_pkcs8_v2(base64.b64decode(body))
        except (ValueError, IndexError) as e:
            raise SystemExit(f"{path}: not an Ed25519 private key in PKCS#8 PEM ({e})")
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: not an Ed25519 private key (PKCS#8 PEM)")
    return key


def thumbprint(key: Ed25519PrivateKey) -> str:
    """The RFC 7638 JWK thumbprint of the public key: the token's kid."""
    public = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    # Required members only, in lexicographic order, no whitespace.
    jwk = '{"crv":"Ed25519","kty":"OKP","x":"%s"}' % b64url(public)
    return b64url(hashlib.sha256(jwk.encode()).digest())


def mint_token(key: Ed25519PrivateKey, kid: str, agency: str, subject: str, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": agency,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + TOKEN_LIFETIME_SECS,
        "jti": uuid.uuid4().hex,
    }
    # PyJWT writes alg; typ replaces its default "JWT"; no other header.
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"typ": TOKEN_TYPE, "kid": kid})


def outcome_name(verdict) -> str:
    return envelope_pb2.Verdict.Outcome.Name(verdict.outcome).removeprefix("OUTCOME_")


async def send_referral(args) -> str:
    """Sends the referral as the school; returns its envelope id if accepted."""
    key = load_ed25519_key(args.school_key)
    kid = thumbprint(key)
    subject = f"{args.school}-python-example"
    token = mint_token(key, kid, args.school, subject, args.audience)
    print(f"token    alg EdDSA, typ {TOKEN_TYPE}, kid {kid}, sub {subject}")

    with open(args.envelope) as f:
        envelope = json_format.Parse(f.read(), envelope_pb2.Envelope())
    envelope.id = str(uuid.uuid4())  # the idempotency key: kept on every re-send
    envelope.sender_agency = args.school
    envelope.author = subject  # must equal the token's sub
    envelope.sent_at.GetCurrentTime()
    payload = envelope.SerializeToString()
    print(f"envelope {envelope.id} from {args.school}")

    nc = await nats.connect(
        args.nats,
        nkeys_seed=args.school_nkey,
        inbox_prefix=f"_INBOX_{args.school}",
        name=f"{args.school}-python-example",
        allow_reconnect=False,
    )
    try:
        subject_name = f"liaison.ingress.{args.school}.envelope"
        for attempt in range(1, 6):
            try:
                reply = await nc.request(
                    subject_name, payload, timeout=5, headers={TOKEN_HEADER: token}
                )
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as e:
                print(f"attempt  {attempt}: no verdict ({type(e).__name__}); same id again")
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            verdict = envelope_pb2.Verdict()
            verdict.ParseFromString(reply.data)
            if verdict.outcome == envelope_pb2.Verdict.OUTCOME_REFUSED and verdict.code in RETRYABLE:
                print(f"attempt  {attempt}: {verdict.code}; same id again")
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            break
        else:
            print("verdict  none after 5 attempts")
            return ""
    finally:
        await nc.close()

    if verdict.outcome == envelope_pb2.Verdict.OUTCOME_REFUSED:
        print(f"verdict  REFUSED ({verdict.code}): {verdict.reason}")
        return ""
    via = f" under {', '.join(verdict.policy_ids)}" if verdict.policy_ids else ""
    print(
        f"verdict  {outcome_name(verdict)}: delivered to {', '.join(verdict.recipients)}{via}"
    )
    return envelope.id


async def read_inbox(args, expected_id: str) -> bool:
    """Reads the police inbox, acknowledging each delivery once printed."""
    nc = await nats.connect(
        args.nats,
        nkeys_seed=args.police_nkey,
        inbox_prefix=f"_INBOX_{args.police}",
        name=f"{args.police}-python-example",
        allow_reconnect=False,
    )
    found = False
    inbox = f"liaison.ingress.{args.police}.inbox"
    # Every copy carries its number in this inbox (1, 2, 3 ... no gap, no
    # repeat): a number skipped is a copy missed. Copies handed out again
    # (not acknowledged in time) may come late; they fill their own gap.
    seen_through, seen_ahead = 0, set()
    try:
        deadline = time.monotonic() + args.wait
        while not found and time.monotonic() < deadline:
            read = envelope_pb2.InboxRead(max=10, wait_ms=1000)
            try:
                reply = await nc.request(f"{inbox}.next", read.SerializeToString(), timeout=12)
            except nats.errors.TimeoutError:
                continue
            answer = envelope_pb2.InboxCopies()
            answer.ParseFromString(reply.data)
            if answer.code:
                print(f"inbox    refused ({answer.code}): {answer.reason}")
                return False
            for copy in answer.copies:
                delivery = copy.delivery
                e = delivery.envelope
                withheld = [
                    labels_pb2.DataLabel.Name(label).removeprefix("DATA_LABEL_").lower()
                    for label in delivery.withheld_labels
                ]
                print(
                    f"delivery #{copy.recipient_seq} {e.id} from {e.sender_agency} to {delivery.recipient}"
                    f" ({e.WhichOneof('body')}), permitted by {', '.join(delivery.policy_ids)}"
                    f", withheld {', '.join(withheld) or 'nothing'}"
                )
                if copy.recipient_seq > seen_through:
                    seen_ahead.add(copy.recipient_seq)
                    while seen_through + 1 in seen_ahead:
                        seen_ahead.remove(seen_through + 1)
                        seen_through += 1
                # A real system stores the delivery first, then acknowledges:
                # unacknowledged, it comes again after the ack wait.
                ack = envelope_pb2.InboxAck(ack_ids=[copy.ack_id])
                acked = envelope_pb2.InboxAcked()
                acked.ParseFromString(
                    (await nc.request(f"{inbox}.ack", ack.SerializeToString(), timeout=10)).data
                )
                if acked.code:
                    print(f"ack      refused ({acked.code}): {acked.reason}")
                    return False
                print(f"acked    {e.id}")
                found = found or e.id == expected_id
        missing = sorted(n for n in range(seen_through + 1, max(seen_ahead, default=0)) if n not in seen_ahead)
        print(f"numbers  1..{seen_through} all seen" + (f"; missing {missing}" if missing else ""))
    finally:
        await nc.close()
    if found:
        print(f"{args.police} read and acknowledged {expected_id}")
    else:
        print(f"{args.police} did not receive {expected_id} within {args.wait} s")
    return found


def arguments():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nats", default=env("LIAISON_NATS_URL"), help="NATS URL [env LIAISON_NATS_URL]")
    p.add_argument("--school", default="school-a", help="the sending agency")
    p.add_argument("--school-nkey", default=env("SCHOOL_NATS_NKEY"), help="its NKey seed file, its NATS login [env SCHOOL_NATS_NKEY, default: deploy/agencies/dev-keys/SCHOOL.nk]")
    p.add_argument("--school-key", default=None, help="[default: deploy/agencies/dev-keys/SCHOOL.pem]")
    p.add_argument("--police", default="police", help="the receiving agency")
    p.add_argument("--police-nkey", default=env("POLICE_NATS_NKEY"), help="[env POLICE_NATS_NKEY, default: deploy/agencies/dev-keys/POLICE.nk]")
    p.add_argument("--envelope", default="deploy/examples/referral.json", help="the referral (protobuf JSON)")
    p.add_argument("--audience", default="liaison-gateway", help="the token's aud")
    p.add_argument("--wait", type=float, default=30, help="seconds to wait for the delivery")
    args = p.parse_args()
    args.school_nkey = args.school_nkey or f"deploy/agencies/dev-keys/{args.school}.nk"
    args.police_nkey = args.police_nkey or f"deploy/agencies/dev-keys/{args.police}.nk"
    args.school_key = args.school_key or f"deploy/agencies/dev-keys/{args.school}.pem"
    missing = [n for n in ("nats",) if not getattr(args, n)]
    if missing:
        p.error("missing " + ", ".join("--" + n.replace("_", "-") for n in missing))
    return args


async def main() -> int:
    args = arguments()
    envelope_id = await send_referral(args)
    if not envelope_id:
        return 1
    return 0 if await read_inbox(args, envelope_id) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
