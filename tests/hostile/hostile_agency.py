"""Liaison's own hostile-agency suite, driven by an outside client (issue 20, item 5).

A partner agency's system turned hostile — school-a, holding nothing but its
own NKey and signing key, as any member of the partnership does — tries every
way around the gateway that the wire contract (docs/wire-contract.md) closes:
forged, replayed and foreign tokens; other agencies' subjects, inboxes and
consumers; the JetStream API and the KV buckets, directly and by making the
gateway write there for it (the reply subject of its own requests); ids taken
by others or of Liaison's own form; shares above its clearance, that no one may
receive, or answering envelopes it never saw; oversized and malformed frames;
a flood. Where a probe needs a victim, the victim is played with its own keys
(school-b, the police, the council, the probation service, the transport
partner).

It speaks only NATS (nats-py) and protobuf (classes generated from proto/ by
clients/python/run.sh), and reuses the Python example's key handling
(clients/python/liaison_example.py). Each probe prints one JSON line on
stdout:

  {"probe": NAME, "class": tokens|subjects|jetstream|kv|ids|frames|flood|policy,
   "held": true|false, "observed": WHAT HAPPENED, "envelope_id": ID or null,
   "sender": AGENCY, "ledger": [{"agency", "decision", "code", "envelope_id",
   "count"}, ...]}

where "ledger" lists the collection records the gateway must have written for
what the probe sent (every refusal it answered, and the envelopes it
accepted). The last line is the "gateway_alive" check (class "alive"): a
genuine referral from school-a accepted and read by the police. A summary
goes to stderr. Exit status: 0 when every probe held and the gateway is
alive, 1 otherwise, 2 on bad arguments.

The probes that make the gateway answer into a stream or a bucket are judged
by what the victim sees where it can (its inbox, its token), otherwise by the
streams' last sequence numbers, read as the operator (stream info only, never
a payload): give the operator's NATS user and password in
LIAISON_OPERATOR_USER and LIAISON_OPERATOR_PASSWORD; without them those
probes count as not held.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import nats
import nats.errors
import nkeys
from cryptography.hazmat.primitives import serialization
from google.protobuf import json_format

from liaison_example import TOKEN_HEADER, TOKEN_TYPE, b64url, load_ed25519_key, thumbprint
from liaison.v1 import envelope_pb2

Verdict = envelope_pb2.Verdict
REFUSED = Verdict.OUTCOME_REFUSED
ACCEPTED = Verdict.OUTCOME_ACCEPTED

# The agencies of deploy/agencies/registry.toml the suite plays.
ATTACKER = "school-a"
VICTIM = "school-b"
POLICE = "police"
COUNCIL = "council"
# Agencies whose inbox positions the attacker tries to overwrite.
INBOX_VICTIM = "probation"
INBOX_VICTIM_2 = "transport-bsp"

TIMEOUT = 5.0  # seconds to wait for a verdict
NATS_ERROR_WAIT = 2.0  # seconds to wait for the server's permissions error
DELIVERY_WAIT = 30.0  # seconds to wait for a copy in an inbox


def compact(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def jws(header: dict, claims: dict, sign) -> str:
    """A JWS in compact form over exactly `header` and `claims`; `sign` maps
    the signing input to the signature (None: unsigned)."""
    signing_input = f"{b64url(compact(header).encode())}.{b64url(compact(claims).encode())}"
    signature = b64url(sign(signing_input.encode())) if sign else ""
    return f"{signing_input}.{signature}"


def public_key_text(key) -> str:
    """The key as the registry writes it (base64url of the raw public key):
    what any member can read, and an attacker may try as an HMAC secret."""
    return b64url(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def describe(verdict) -> str:
    if verdict is None:
        return "no verdict (timeout)"
    outcome = Verdict.Outcome.Name(verdict.outcome).removeprefix("OUTCOME_")
    if verdict.outcome == REFUSED:
        reason = verdict.reason if len(verdict.reason) <= 160 else verdict.reason[:157] + "..."
        return f"REFUSED {verdict.code}: {reason}"
    return f"{outcome} to [{', '.join(verdict.recipients)}]"


class Agency:
    """One agency's system: its NATS connection (its own NKey, its own inbox
    prefix), its signing key, and the permissions errors the server sent it."""

    def __init__(self, suite, name: str):
        self.suite = suite
        self.name = name
        self.key = load_ed25519_key(str(suite.keys / f"{name}.pem"))
        self.kid = thumbprint(self.key)
        self.author = f"{name}-hostile-suite"
        self.errors: list[str] = []
        self.nc = None

    @property
    def ingress(self) -> str:
        return f"liaison.ingress.{self.name}.envelope"

    async def connect(self):
        async def on_error(e):
            self.errors.append(str(e))

        # A gateway just started may not answer logins yet: try for a while.
        deadline = time.monotonic() + 20
        while True:
            try:
                self.nc = await nats.connect(
                    self.suite.url,
                    nkeys_seed=str(self.suite.keys / f"{self.name}.nk"),
                    inbox_prefix=f"_INBOX_{self.name}",
                    name=f"{self.name}-hostile-suite",
                    allow_reconnect=False,
                    error_cb=on_error,
                    connect_timeout=5,
                )
                return self
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def claims(self, **changes) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.name,
            "sub": self.author,
            "aud": self.suite.audience,
            "iat": now,
            "nbf": now,
            "exp": now + 120,
            "jti": uuid.uuid4().hex,
        }
        for k, v in changes.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        return claims

    def header(self, **changes) -> dict:
        header = {"alg": "EdDSA", "typ": TOKEN_TYPE, "kid": self.kid}
        for k, v in changes.items():
            if v is None:
                header.pop(k, None)
            else:
                header[k] = v
        return header

    def token(self, header: dict | None = None, claims: dict | None = None, key=None) -> str:
        """A token signed with `key` (default: the agency's own)."""
        return jws(header or self.header(), claims or self.claims(), (key or self.key).sign)

    async def send(self, payload: bytes, token: str | None, subject: str | None = None, headers=None, timeout=TIMEOUT):
        """Sends on the agency's ingress (or `subject`); the verdict, or None."""
        all_headers = dict(headers or {})
        if token is not None:
            all_headers[TOKEN_HEADER] = token
        try:
            reply = await self.nc.request(
                subject or self.ingress, payload, timeout=timeout, headers=all_headers or None
            )
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
            return None
        verdict = Verdict()
        verdict.ParseFromString(reply.data)
        return verdict

    async def send_until_answered(self, envelope, wait=30.0):
        """Sends `envelope` with fresh tokens, the same id, until the gateway
        answers other than unavailable or rate_limited (or `wait` passes):
        the last verdict, and the ledger records of every answer."""
        deadline = time.monotonic() + wait
        delay = 0.1
        ledger = []
        while True:
            verdict = await self.send(envelope.SerializeToString(), self.token())
            ledger += verdict_entries(self.name, verdict)
            retry = verdict is None or (verdict.outcome == REFUSED and verdict.code in ("unavailable", "rate_limited"))
            if not retry or time.monotonic() > deadline:
                return verdict, ledger
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def violation(self, kind: str, subject: str) -> bool:
        wanted = f'permissions violation for {kind} to "{subject}"'.lower()
        return any(wanted in e.lower() for e in self.errors)

    async def await_violation(self, kind: str, subject: str) -> bool:
        deadline = time.monotonic() + NATS_ERROR_WAIT
        while not self.violation(kind, subject):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True


class Inbox:
    """An agency's inbox, read through the gateway and acknowledged copy by
    copy, remembering every copy seen: (sender, id) -> kind."""

    def __init__(self, agency: Agency):
        self.agency = agency
        self.seen: dict[tuple[str, str], str] = {}

    async def read_once(self, wait_ms=500):
        """One read; the refusal code, or '' once every copy handed out is acknowledged."""
        nc = self.agency.nc
        subject = f"liaison.ingress.{self.agency.name}.inbox"
        read = envelope_pb2.InboxRead(max=100, wait_ms=wait_ms)
        try:
            reply = await nc.request(f"{subject}.next", read.SerializeToString(), timeout=wait_ms / 1000 + 10)
        except nats.errors.TimeoutError:
            return "timeout"
        answer = envelope_pb2.InboxCopies()
        answer.ParseFromString(reply.data)
        if answer.code:
            return f"{answer.code}: {answer.reason}"
        if answer.copies:
            ack = envelope_pb2.InboxAck(ack_ids=[c.ack_id for c in answer.copies])
            acked = envelope_pb2.InboxAcked()
            acked.ParseFromString((await nc.request(f"{subject}.ack", ack.SerializeToString(), timeout=10)).data)
            if acked.code:
                return f"ack {acked.code}: {acked.reason}"
        for c in answer.copies:
            e = c.delivery.envelope
            self.seen[(e.sender_agency, e.id)] = e.WhichOneof("body") or ""
        return ""

    async def wait_for(self, sender: str, envelope_id: str, wait=DELIVERY_WAIT):
        """The kind of the copy (sender, id) once read, or None (with why)."""
        deadline = time.monotonic() + wait
        while (sender, envelope_id) not in self.seen:
            if time.monotonic() > deadline:
                return None, "not delivered"
            refused = await self.read_once()
            if refused and refused != "timeout":
                return None, f"inbox refused ({refused})"
        return self.seen[(sender, envelope_id)], ""


def refused_entry(agency: str, code: str, envelope_id=None, count=1) -> dict:
    return {"agency": agency, "decision": "refused", "code": code, "envelope_id": envelope_id or None, "count": count}


def accepted_entry(agency: str, envelope_id: str) -> dict:
    return {"agency": agency, "decision": "accepted", "code": "", "envelope_id": envelope_id, "count": 1}


def verdict_entries(agency: str, verdict) -> list:
    """What the gateway recorded for a verdict it answered."""
    if verdict is None:
        return []
    if verdict.outcome == REFUSED:
        if verdict.code == "unavailable":
            return []  # not recorded: nothing could be stored
        return [refused_entry(agency, verdict.code, verdict.envelope_id)]
    if verdict.outcome == ACCEPTED:
        return [accepted_entry(agency, verdict.envelope_id)]
    return []


def outcome(held: bool, observed: str, envelope_id=None, ledger=None) -> dict:
    return {"held": bool(held), "observed": observed, "envelope_id": envelope_id or None, "ledger": ledger or []}


def refusal_outcome(agency: str, verdict, code: str, mentions: str = "") -> dict:
    """Held when the gateway refused with `code` and a reason mentioning `mentions`."""
    held = (
        verdict is not None
        and verdict.outcome == REFUSED
        and verdict.code == code
        and mentions in verdict.reason
    )
    observed = describe(verdict)
    if not held:
        observed += f" (expected REFUSED {code}" + (f" mentioning {mentions!r})" if mentions else ")")
    return outcome(held, observed, verdict.envelope_id if verdict else None, verdict_entries(agency, verdict))


PROBES = []
OWN = object()  # a valid token of the sender's own


def probe(name: str, cls: str, sender: str = ATTACKER):
    def register(fn):
        PROBES.append((name, cls, sender, fn))
        return fn

    return register


class Suite:
    def __init__(self, args):
        self.url = args.nats
        self.audience = args.audience
        self.keys = Path(args.keys)
        self.max_envelope_bytes = args.max_envelope_bytes
        self.operator = (os.environ.get("LIAISON_OPERATOR_USER"), os.environ.get("LIAISON_OPERATOR_PASSWORD"))
        self.run = uuid.uuid4().hex[:8]
        self.counter = 0
        self.agencies: dict[str, Agency] = {}
        self.observer = None
        self.inbox: dict[str, Inbox] = {}
        self.deputy: dict[str, dict] = {}

    def new_id(self, what: str) -> str:
        self.counter += 1
        return f"hostile-{self.run}-{self.counter:03d}-{what}"[:64]

    def __getitem__(self, name: str) -> Agency:
        return self.agencies[name]

    async def start(self):
        for name in (ATTACKER, VICTIM, POLICE, COUNCIL, INBOX_VICTIM, INBOX_VICTIM_2):
            self.agencies[name] = await Agency(self, name).connect()
            self.inbox[name] = Inbox(self.agencies[name])
        user, password = self.operator
        if user and password:
            self.observer = await nats.connect(
                self.url, user=user, password=password, inbox_prefix=f"_INBOX_{user}",
                name="hostile-suite-observer", allow_reconnect=False,
            )

    async def close(self):
        for a in self.agencies.values():
            await a.nc.close()
        if self.observer:
            await self.observer.close()

    async def last_seq(self, stream: str):
        """A stream's last sequence number, as the operator sees it (no payload)."""
        if self.observer is None:
            return None
        info = await self.observer.jetstream().stream_info(stream)
        return info.state.last_seq

    # Envelopes, in the protobuf JSON mapping.

    def envelope(self, sender: str, fields: dict, envelope_id: str | None = None):
        agency = self.agencies.get(sender)
        base = {
            "id": envelope_id or self.new_id(sender),
            "senderAgency": sender,
            "author": agency.author if agency else f"{sender}-hostile-suite",
            "classification": "CLASSIFICATION_OFFICIAL_SENSITIVE",
            "purpose": "safeguarding",
            "legalBasis": "CTSA-2015-s26",
        }
        base.update(fields)
        envelope = json_format.ParseDict(base, envelope_pb2.Envelope())
        envelope.sent_at.GetCurrentTime()
        return envelope

    def referral(self, sender: str, envelope_id: str | None = None, subject_token: str | None = None, **fields):
        body = {
            "referral": {
                "subject": {
                    # A child of its own per referral, unless the probe links two.
                    "token": subject_token or f"tok-hostile-{uuid.uuid4().hex}",
                    "fullName": "Alex Example",
                    "dateOfBirth": "2010-04-12",
                    "address": "12 Demo Street, Exampletown",
                    "category": "person at risk",
                },
                "source": "school",
                "concern": "Shared extremist videos with classmates",
                "riskIndicators": ["online radicalisation"],
                "healthNotes": "Under CAMHS for anxiety",
                "educationNotes": "Attendance falling",
            }
        }
        body.update(fields)
        return self.envelope(sender, body, envelope_id)

    async def send_expecting(self, sender: str, envelope, code: str, mentions: str = "", token=OWN, headers=None):
        """Sends `envelope` with `token` (OWN: a valid one of the sender's; None: none)."""
        agency = self[sender]
        token = agency.token() if token is OWN else token
        verdict = await agency.send(envelope.SerializeToString(), token, headers=headers)
        return refusal_outcome(sender, verdict, code, mentions)

    async def accepted(self, sender: str, envelope, what: str):
        """Sends a genuine envelope that must be accepted: (verdict, ledger, problem)."""
        verdict, ledger = await self[sender].send_until_answered(envelope)
        if verdict is None or verdict.outcome != ACCEPTED:
            return verdict, ledger, f"{what}: {describe(verdict)}"
        return verdict, ledger, ""

    # NATS permissions.

    async def publish_denied(self, agency: Agency, subject: str, payload=b"", headers=None) -> dict:
        """Held when the server refuses the publish (a request) and no answer comes."""
        agency.errors.clear()
        request = asyncio.ensure_future(
            agency.nc.request(subject, payload, timeout=NATS_ERROR_WAIT, headers=headers)
        )
        deadline = time.monotonic() + NATS_ERROR_WAIT
        while not request.done() and not agency.violation("publish", subject) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if not request.done():
            # Refused: an answer could only come from a responder that got it anyway.
            await asyncio.wait([request], timeout=0.2)
        answered = None
        if request.done():
            try:
                answered = request.result()
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                pass
        else:
            request.cancel()
        denied = agency.violation("publish", subject)
        if answered is not None:
            return outcome(False, f"answered ({len(answered.data)} bytes): the publish went through")
        if denied:
            return outcome(True, "NATS: permissions violation for publish")
        return outcome(False, "no permissions violation from the server (no answer either)")

    async def subscribe_denied(self, agency: Agency, subject: str, provoke=None) -> dict:
        """Held when the server refuses the subscription and nothing arrives;
        `provoke` (a coroutine) makes traffic the subscription would see."""
        agency.errors.clear()
        got = []

        async def on_message(msg):
            got.append(msg.subject)

        sub = await agency.nc.subscribe(subject, cb=on_message)
        await agency.nc.flush()
        denied = await agency.await_violation("subscription", subject)
        if provoke is not None:
            await provoke()
            await asyncio.sleep(0.3)
        try:
            await sub.unsubscribe()
        except Exception:
            pass
        if got:
            return outcome(False, f"received {len(got)} messages, e.g. on {got[0]}")
        if denied:
            return outcome(True, "NATS: permissions violation for subscription")
        return outcome(False, "no permissions violation from the server (nothing received either)")


# ---------------------------------------------------------------------------
# The gateway as a deputy: the reply subject of the attacker's own requests.
# The gateway answers each request on its reply subject, with its own NATS
# rights (EVENTS, DELIVERY, DECISIONS, the KV buckets): an answer must never
# go anywhere but the requesting agency's own inbox prefix. These run first,
# one at a time, on a quiet system; each sends one request with no token
# (refused missing_token, recorded, answered) or one inbox read, and judges
# its target by what the victim sees, or by the target stream's last
# sequence number (the operator's stream info, no payload).

DECISIONS = "DECISIONS"


def jti_key(issuer: str, jti: str) -> str:
    """Where the gateway binds a token id (services/gateway/src/replay.rs)."""
    return f"{issuer}.{hashlib.sha256(jti.encode()).digest()[:16].hex()}"


async def deputy(s: Suite, target: str, door: str = "envelope", stream: str | None = None,
                 victim_inbox: str | None = None, listen: str | None = None, before=None, after=None) -> dict:
    """School-a's request on its own ingress with reply subject `target`.
    Held when nothing was written to `stream` (beyond the refusal's own
    record in DECISIONS), `victim_inbox` still reads, nothing arrived on
    `listen` (a subscription of the victim's), and `after` (the victim's own
    check, returning (problem, envelope id, ledger)) finds nothing wrong;
    `before` (the same shape) readies the victim first."""
    if s.observer is None and stream:
        return outcome(False, "cannot judge: no operator credentials (LIAISON_OPERATOR_USER/PASSWORD)")
    attacker = s[ATTACKER]
    ledger = []
    if before is not None:
        problem, _, ledger = await before(s)
        if problem:
            return outcome(False, f"before the probe: {problem}", None, ledger)
    heard = []
    sub = None
    if listen:
        async def on_message(msg):
            heard.append(msg.subject)

        sub = await s[VICTIM].nc.subscribe(listen, cb=on_message)
        await s[VICTIM].nc.flush()
    watched = sorted({x for x in (stream, DECISIONS) if x}) if s.observer else []
    before = {name: await s.last_seq(name) for name in watched}
    if door == "inbox":
        subject = f"liaison.ingress.{ATTACKER}.inbox.next"
        payload = envelope_pb2.InboxRead(max=1, wait_ms=0).SerializeToString()
    else:
        subject, payload = attacker.ingress, b"\xff\xff"
    # A reply subject outside the sender's own inbox: the request is not
    # served, nothing is answered, and the refusal is recorded (one
    # DECISIONS message) whatever the door.
    ledger.append(refused_entry(ATTACKER, "invalid_reply_subject"))
    await attacker.nc.publish(subject, payload, reply=target)
    await attacker.nc.flush()
    if s.observer:
        deadline = time.monotonic() + 10
        while await s.last_seq(DECISIONS) - before[DECISIONS] < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    after_seq = {name: await s.last_seq(name) for name in watched}
    if sub is not None:
        await sub.unsubscribe()
    where = f"the gateway's answer to {ATTACKER}'s request with reply subject {target}"
    problems = []
    if heard:
        problems.append(f"{where} arrived in {VICTIM}'s inbox prefix ({heard[0]})")
    if stream:
        grew = after_seq[stream] - before[stream]
        expected = 1 if stream == DECISIONS else 0
        if grew != expected:
            problems.append(f"{where} was written into {stream} (last sequence +{grew}, expected +{expected})")
    if victim_inbox:
        refused = await s.inbox[victim_inbox].read_once(wait_ms=0)
        if refused:
            problems.append(f"{victim_inbox}'s inbox no longer reads: {refused}")
    envelope_id = None
    if after is not None:
        problem, envelope_id, more = await after(s)
        ledger += more
        if problem:
            problems.append(problem)
    if problems:
        return outcome(False, "; ".join(problems), envelope_id, ledger)
    seen = f"{stream} unchanged" if stream else "nothing arrived"
    if victim_inbox:
        seen += f"; {victim_inbox}'s inbox still reads"
    return outcome(True, f"{seen} after a request with reply subject {target}", envelope_id, ledger)


def _deputy_probe(name, cls, target, **how):
    async def run(s: Suite):
        return await deputy(s, target, **how)

    probe(name, cls)(run)


# DECISIONS first: the others' garbage, if it lands, may make Liaison's
# services record something of their own there.
_deputy_probe("reply_into_decisions", "jetstream", "liaison.decisions.gateway", stream=DECISIONS)
_deputy_probe("reply_into_another_agencys_inbox", "subjects", f"_INBOX_{VICTIM}.hostile-deputy",
              listen=f"_INBOX_{VICTIM}.hostile-deputy")
async def _council_reads_school_b(s: Suite):
    """school-b refers a child; the council (its other recipient) reads it."""
    envelope = s.referral(VICTIM)
    verdict, ledger, problem = await s.accepted(VICTIM, envelope, f"{VICTIM}'s referral")
    if not problem:
        kind, why = await s.inbox[COUNCIL].wait_for(VICTIM, envelope.id, wait=15)
        if kind != "referral":
            problem = f"the council did not read {VICTIM}'s referral {envelope.id} ({why})"
    return problem, envelope.id, ledger


# Into the council's inbox in DELIVERY, after a copy it has read: its next
# copies must still reach it.
_deputy_probe("reply_into_delivery", "jetstream", f"liaison.deliver.{COUNCIL}.referral", stream="DELIVERY",
              before=_council_reads_school_b, after=_council_reads_school_b)
_deputy_probe("reply_into_events", "jetstream", "liaison.commits", stream="EVENTS")
_deputy_probe("reply_into_facts", "jetstream", "liaison.facts.referral", stream="EVENTS")
_deputy_probe("reply_into_kv_membership", "kv", f"$KV.MEMBERSHIP.{VICTIM}", stream="KV_MEMBERSHIP")
_deputy_probe("reply_into_kv_registry", "kv", f"$KV.REGISTRY.{VICTIM}", stream="KV_REGISTRY")
_deputy_probe("reply_into_kv_receipts", "kv", "$KV.RECEIPTS.hostile-deputy", stream="KV_RECEIPTS")
_deputy_probe("reply_into_kv_inbox_position", "kv", f"$KV.INBOX.{INBOX_VICTIM}", stream="KV_INBOX",
              victim_inbox=INBOX_VICTIM)
_deputy_probe("inbox_read_reply_into_kv_inbox", "kv", f"$KV.INBOX.{INBOX_VICTIM_2}", door="inbox",
              stream="KV_INBOX", victim_inbox=INBOX_VICTIM_2)


@probe("reply_into_kv_jti", "kv")
async def reply_into_kv_jti(s: Suite):
    """The binding of a token id school-b will use, written ahead: school-b's
    genuine token with that jti must still be accepted."""
    jti = uuid.uuid4().hex

    async def victim_sends(s: Suite):
        victim = s[VICTIM]
        envelope = s.referral(VICTIM)
        verdict = await victim.send(envelope.SerializeToString(), victim.token(claims=victim.claims(jti=jti)))
        problem = ""
        if verdict is None or verdict.outcome != ACCEPTED:
            problem = f"{VICTIM}'s genuine token with that jti: {describe(verdict)}"
        return problem, envelope.id, verdict_entries(VICTIM, verdict)

    return await deputy(s, f"$KV.JTI.{jti_key(VICTIM, jti)}", stream="KV_JTI", after=victim_sends)


# ---------------------------------------------------------------------------
# Tokens: forged, replayed and foreign.

def _token_probe(name, code, mentions, make):
    async def run(s: Suite):
        a = s[ATTACKER]
        return await s.send_expecting(ATTACKER, s.referral(ATTACKER), code, mentions, token=make(s, a))

    probe(name, "tokens")(run)


_token_probe("no_token", "missing_token", "Liaison-Token", lambda s, a: None)
_token_probe("signed_with_police_key", "invalid_token", "kid",
             lambda s, a: a.token(header=a.header(kid=s[POLICE].kid), key=s[POLICE].key))
_token_probe("police_key_under_school_kid", "bad_signature", "signature",
             lambda s, a: a.token(key=s[POLICE].key))
_token_probe("alg_none", "invalid_token", "algorithm",
             lambda s, a: jws(a.header(alg="none"), a.claims(), None))
_token_probe("hs256_keyed_with_public_key", "invalid_token", "algorithm must be EdDSA",
             lambda s, a: jws(a.header(alg="HS256"), a.claims(),
                              lambda m: hmac.new(public_key_text(a.key).encode(), m, hashlib.sha256).digest()))
_token_probe("wrong_typ", "invalid_token", "typ", lambda s, a: a.token(header=a.header(typ="JWT")))
_token_probe("wrong_aud", "invalid_token", "aud", lambda s, a: a.token(claims=a.claims(aud="liaison-audit")))
_token_probe("expired", "token_expired", "expired",
             lambda s, a: a.token(claims=a.claims(iat=int(time.time()) - 300, nbf=int(time.time()) - 300,
                                                  exp=int(time.time()) - 200)))
_token_probe("nbf_in_future", "invalid_token", "not valid yet",
             lambda s, a: a.token(claims=a.claims(nbf=int(time.time()) + 300)))
_token_probe("lifetime_too_long", "invalid_token", "lifetime",
             lambda s, a: a.token(claims=a.claims(exp=int(time.time()) + 86400)))
_token_probe("missing_jti", "invalid_token", "jti", lambda s, a: a.token(claims=a.claims(jti=None)))
_token_probe("kid_mismatch", "invalid_token", "kid", lambda s, a: a.token(header=a.header(kid=s[VICTIM].kid)))
_token_probe("jku_header", "invalid_token", "jku",
             lambda s, a: a.token(header=a.header(jku="https://attacker.example/jwks.json")))


def _tampered(s, a):
    head, _, signature = a.token().split(".")
    forged = b64url(compact(a.claims(sub="someone-else")).encode())
    return f"{head}.{forged}.{signature}"


_token_probe("tampered_claims", "bad_signature", "signature", _tampered)
_token_probe("iss_mismatch", "invalid_token", "iss", lambda s, a: a.token(claims=a.claims(iss=VICTIM)))
_token_probe("foreign_token_of_school_b", "invalid_token", "kid", lambda s, a: s[VICTIM].token())


@probe("replayed_jti", "tokens")
async def replayed_jti(s: Suite):
    a = s[ATTACKER]
    claims = a.claims()
    first = s.referral(ATTACKER)
    verdict = await a.send(first.SerializeToString(), a.token(claims=claims))
    ledger = verdict_entries(ATTACKER, verdict)
    if verdict is None or verdict.outcome != ACCEPTED:
        return outcome(False, f"the first use of the token was not accepted: {describe(verdict)}", ledger=ledger)
    # Another token (a second later) with the same jti.
    replay = a.token(claims=dict(claims, iat=claims["iat"] + 1))
    result = await s.send_expecting(ATTACKER, s.referral(ATTACKER), "token_replayed", "jti", token=replay)
    result["ledger"] = ledger + result["ledger"]
    return result


@probe("author_not_token_subject", "tokens")
async def author_not_token_subject(s: Suite):
    a = s[ATTACKER]
    envelope = s.referral(ATTACKER)
    envelope.author = "someone-else"
    return await s.send_expecting(ATTACKER, envelope, "invalid_field", "author")


# ---------------------------------------------------------------------------
# Other agencies' subjects; the internal, events and delivery subjects.

def _publish_probe(name, cls, subject, payload=lambda s: b"", headers=lambda s: None):
    async def run(s: Suite):
        return await s.publish_denied(s[ATTACKER], subject, payload(s), headers(s))

    probe(name, cls)(run)


def _genuine(s: Suite, sender=ATTACKER):
    return s.referral(sender).SerializeToString()


_publish_probe("send_on_police_ingress", "subjects", f"liaison.ingress.{POLICE}.envelope", _genuine,
               lambda s: {TOKEN_HEADER: s[ATTACKER].token()})
_publish_probe("send_as_school_b_with_its_token", "subjects", f"liaison.ingress.{VICTIM}.envelope",
               lambda s: _genuine(s, VICTIM), lambda s: {TOKEN_HEADER: s[VICTIM].token()})
_publish_probe("read_police_inbox_at_the_gateway", "subjects", f"liaison.ingress.{POLICE}.inbox.next",
               lambda s: envelope_pb2.InboxRead(max=10).SerializeToString())
_publish_probe("ack_police_copies", "subjects", f"liaison.ingress.{POLICE}.inbox.ack",
               lambda s: envelope_pb2.InboxAck(ack_ids=["1-1"]).SerializeToString())
_publish_probe("send_as_liaison_linkage_internal", "subjects", "liaison.internal.linkage.envelope", _genuine)
_publish_probe("publish_into_events", "subjects", "liaison.commits", _genuine)
_publish_probe("publish_into_delivery", "subjects", f"liaison.deliver.{POLICE}.referral", _genuine)
_publish_probe("publish_into_decisions", "subjects", "liaison.decisions.gateway", _genuine)
_publish_probe("publish_ledger_entries", "subjects", "liaison.ledger.entries", _genuine)
_publish_probe("suspend_school_b_as_operator", "subjects", "liaison.admin.agencies",
               lambda s: compact({"op": "suspend", "agency": VICTIM}).encode())
_publish_probe("ask_cases_service_directly", "subjects", "liaison.cases.query", lambda s: b"")
_publish_probe("answer_auth_callout", "subjects", "$SYS.REQ.USER.AUTH", lambda s: b"{}")


def _subscribe_probe(name, cls, subject, provoke=None):
    async def run(s: Suite):
        return await s.subscribe_denied(s[ATTACKER], subject, (lambda: provoke(s)) if provoke else None)

    probe(name, cls)(run)


async def _police_read(s: Suite):
    await s.inbox[POLICE].read_once(wait_ms=0)


_subscribe_probe("subscribe_police_inbox_prefix", "subjects", f"_INBOX_{POLICE}.>", _police_read)
_subscribe_probe("subscribe_all_deliveries", "subjects", "liaison.deliver.>")
_subscribe_probe("subscribe_events", "subjects", "liaison.commits")
_subscribe_probe("subscribe_all_ingress", "subjects", "liaison.ingress.>")
_subscribe_probe("subscribe_auth_callout", "subjects", "$SYS.REQ.USER.AUTH")
_subscribe_probe("subscribe_everything", "subjects", ">")


# ---------------------------------------------------------------------------
# The JetStream API, directly.

_JS = [
    ("js_account_info", "$JS.API.INFO", b""),
    ("js_stream_list", "$JS.API.STREAM.LIST", b"{}"),
    ("js_stream_names", "$JS.API.STREAM.NAMES", b"{}"),
    ("js_stream_info_events", "$JS.API.STREAM.INFO.EVENTS", b""),
    ("js_consumer_create_on_delivery", "$JS.API.CONSUMER.CREATE.DELIVERY",
     compact({"stream_name": "DELIVERY", "config": {"filter_subject": f"liaison.deliver.{POLICE}.>",
                                                     "ack_policy": "none", "deliver_policy": "all"}}).encode()),
    ("js_consumer_create_filtered_on_delivery", f"$JS.API.CONSUMER.CREATE.DELIVERY.steal.liaison.deliver.{POLICE}.>",
     compact({"stream_name": "DELIVERY",
              "config": {"name": "steal", "filter_subject": f"liaison.deliver.{POLICE}.>"}}).encode()),
    ("js_direct_get_delivery", "$JS.API.DIRECT.GET.DELIVERY",
     compact({"seq": 1, "next_by_subj": f"liaison.deliver.{POLICE}.>"}).encode()),
    ("js_direct_get_delivery_by_subject", f"$JS.API.DIRECT.GET.DELIVERY.liaison.deliver.{POLICE}.referral", b""),
    ("js_msg_get_ledger", "$JS.API.STREAM.MSG.GET.LEDGER", compact({"seq": 1}).encode()),
    ("js_next_from_router_consumer", "$JS.API.CONSUMER.MSG.NEXT.EVENTS.gateway-router", compact({"batch": 1}).encode()),
    ("js_stream_purge_ledger", "$JS.API.STREAM.PURGE.LEDGER", b""),
    ("js_stream_delete_events", "$JS.API.STREAM.DELETE.EVENTS", b""),
    ("js_stream_create_shadowing_delivery", "$JS.API.STREAM.CREATE.SHADOW",
     compact({"name": "SHADOW", "subjects": ["liaison.deliver.>"]}).encode()),
    ("js_domain_api_info", "$JS.liaison.API.INFO", b""),
]
for _name, _subject, _payload in _JS:
    _publish_probe(_name, "jetstream", _subject, lambda s, p=_payload: p)


# ---------------------------------------------------------------------------
# KV buckets, directly.

_KV = [
    ("kv_read_receipts", "$JS.API.DIRECT.GET.KV_RECEIPTS", compact({"last_by_subj": "$KV.RECEIPTS.>"}).encode()),
    ("kv_write_receipt", "$KV.RECEIPTS.hostile", b"{}"),
    ("kv_read_registry", "$JS.API.STREAM.MSG.GET.KV_REGISTRY",
     compact({"last_by_subj": f"$KV.REGISTRY.{ATTACKER}"}).encode()),
    ("kv_raise_own_clearance", f"$KV.REGISTRY.{ATTACKER}", b'id = "school-a"\nclearance = "TOP-SECRET"\n'),
    ("kv_suspend_school_b", f"$KV.MEMBERSHIP.{VICTIM}", b'{"suspended":true}'),
    ("kv_read_membership", "$JS.API.DIRECT.GET.KV_MEMBERSHIP",
     compact({"last_by_subj": f"$KV.MEMBERSHIP.{VICTIM}"}).encode()),
    ("kv_move_police_inbox_position", f"$KV.INBOX.{POLICE}", b"{}"),
    ("kv_join_a_case", "$KV.PARTICIPATION.CASE-1", b"{}"),
    ("kv_burn_a_jti", f"$KV.JTI.{VICTIM}.00", b"x"),
]
for _name, _subject, _payload in _KV:
    _publish_probe(_name, "kv", _subject, lambda s, p=_payload: p)
_subscribe_probe("kv_watch_membership", "kv", "$KV.MEMBERSHIP.>")


# ---------------------------------------------------------------------------
# Ids taken by others, ids of Liaison's own form, senders that are not the sender.

@probe("squat_school_b_id", "ids")
async def squat_school_b_id(s: Suite):
    """school-a sends id X first; school-b's genuine referral X must still be
    accepted and delivered (ids are each sender's own)."""
    shared = s.new_id("squat")
    _, ledger, problem = await s.accepted(ATTACKER, s.referral(ATTACKER, shared), "the squat")
    if problem:
        return outcome(False, problem, shared, ledger)
    verdict, more = await s[VICTIM].send_until_answered(s.referral(VICTIM, shared))
    ledger += more
    if verdict is None or verdict.outcome != ACCEPTED:
        return outcome(False, f"{VICTIM}'s genuine referral with the squatted id: {describe(verdict)}", shared, ledger)
    kind, why = await s.inbox[POLICE].wait_for(VICTIM, shared)
    if kind != "referral":
        return outcome(False, f"{VICTIM}'s referral ACCEPTED but the police never read it ({why})", shared, ledger)
    return outcome(True, f"{VICTIM}'s referral with {ATTACKER}'s id ACCEPTED and read by the police", shared, ledger)


@probe("squat_through_nats_msg_id_header", "ids")
async def squat_through_nats_msg_id_header(s: Suite):
    """school-a sends its own referral with the header Nats-Msg-Id naming
    school-b's next envelope (SENDER/ID): headers never reach the streams."""
    victim_id = s.new_id("header-squat")
    envelope = s.referral(ATTACKER)
    verdict = await s[ATTACKER].send(
        envelope.SerializeToString(), s[ATTACKER].token(), headers={"Nats-Msg-Id": f"{VICTIM}/{victim_id}"}
    )
    ledger = verdict_entries(ATTACKER, verdict)
    verdict, more = await s[VICTIM].send_until_answered(s.referral(VICTIM, victim_id))
    ledger += more
    if verdict is None or verdict.outcome != ACCEPTED:
        return outcome(False, f"{VICTIM}'s referral after the header squat: {describe(verdict)}", victim_id, ledger)
    kind, why = await s.inbox[POLICE].wait_for(VICTIM, victim_id)
    if kind != "referral":
        return outcome(False, f"{VICTIM}'s referral ACCEPTED but the police never read it ({why})", victim_id, ledger)
    return outcome(True, f"{VICTIM}'s referral ACCEPTED and read by the police", victim_id, ledger)


@probe("squat_liaison_own_event_id", "ids")
async def squat_liaison_own_event_id(s: Suite):
    """The linkage service's event for a referral R of a person already
    referred by another agency has the id duplicate:R. school-a sends that id
    first, then R: the police must still receive liaison-linkage's notice."""
    person = f"tok-hostile-{uuid.uuid4().hex}"
    _, ledger, problem = await s.accepted(VICTIM, s.referral(VICTIM, subject_token=person), "school-b's referral")
    if problem:
        return outcome(False, problem, None, ledger)
    mine = s.new_id("own")
    squat_id = f"duplicate:{mine}"
    _, more, problem = await s.accepted(ATTACKER, s.referral(ATTACKER, squat_id), "the squat")
    ledger += more
    if problem:
        return outcome(False, problem, squat_id, ledger)
    second = s.referral(ATTACKER, mine, subject_token=person)
    _, more, problem = await s.accepted(ATTACKER, second, "the second referral")
    ledger += more
    if problem:
        return outcome(False, problem, squat_id, ledger)
    kind, why = await s.inbox[POLICE].wait_for("liaison-linkage", squat_id)
    if kind != "duplicate_subject":
        return outcome(False, f"liaison-linkage's {squat_id} never reached the police ({why}): suppressed by the squat",
                       squat_id, ledger)
    return outcome(True, f"liaison-linkage's duplicate_subject {squat_id} read by the police beside {ATTACKER}'s own",
                   squat_id, ledger)


@probe("sender_agency_liaison_linkage", "ids")
async def sender_agency_liaison_linkage(s: Suite):
    envelope = s.referral(ATTACKER)
    envelope.sender_agency = "liaison-linkage"
    return await s.send_expecting(ATTACKER, envelope, "invalid_field", "sender_agency")


@probe("sender_agency_police", "ids")
async def sender_agency_police(s: Suite):
    envelope = s.referral(ATTACKER)
    envelope.sender_agency = POLICE
    return await s.send_expecting(ATTACKER, envelope, "invalid_field", "sender_agency")


@probe("raise_liaison_duplicate_subject", "ids")
async def raise_liaison_duplicate_subject(s: Suite):
    envelope = s.envelope(ATTACKER, {"duplicateSubject": {"subjectToken": "tok-x", "referralEnvelopeIds": ["x"],
                                                         "referringAgencies": [VICTIM]}})
    return await s.send_expecting(ATTACKER, envelope, "invalid_field", "body")


@probe("id_naming_another_sender", "ids")
async def id_naming_another_sender(s: Suite):
    envelope = s.referral(ATTACKER, f"{VICTIM}/{s.new_id('slash')}"[:64])
    return await s.send_expecting(ATTACKER, envelope, "invalid_field", "id")


# ---------------------------------------------------------------------------
# Policy: above its clearance, to no one, answering what it never saw.

@probe("top_secret_referral_from_a_school", "policy")
async def top_secret_referral(s: Suite):
    envelope = s.referral(ATTACKER, classification="CLASSIFICATION_TOP_SECRET")
    return await s.send_expecting(ATTACKER, envelope, "policy_denied", "may not send an envelope classified TOP-SECRET")


@probe("secret_referral_above_clearance", "policy")
async def secret_referral(s: Suite):
    envelope = s.referral(ATTACKER, classification="CLASSIFICATION_SECRET")
    return await s.send_expecting(ATTACKER, envelope, "policy_denied", "may not send an envelope classified SECRET")


@probe("referral_under_a_caveat_nobody_holds", "policy")
async def caveat_nobody_holds(s: Suite):
    envelope = s.referral(ATTACKER, handlingCaveats=["LOCSEN"])
    return await s.send_expecting(ATTACKER, envelope, "no_recipient", "LOCSEN")


@probe("police_secret_alert_no_one_may_receive", "policy", POLICE)
async def secret_alert(s: Suite):
    envelope = s.envelope(POLICE, {
        "classification": "CLASSIFICATION_SECRET",
        "purpose": "protective-security",
        "legalBasis": "DPA-2018-s35",
        "alert": {"threatLevel": "THREAT_LEVEL_CRITICAL", "sectors": ["retail"], "region": "london",
                  "headline": "Vehicle used as a weapon", "protectiveAdvice": "Activate barriers",
                  "location": "Oxford Street"},
    })
    return await s.send_expecting(POLICE, envelope, "no_recipient", "cleared below its classification SECRET")


@probe("case_update_without_a_clause", "policy")
async def case_update(s: Suite):
    envelope = s.envelope(ATTACKER, {"caseId": "CASE-1", "caseUpdate": {"summary": "not the school's to send"}})
    return await s.send_expecting(ATTACKER, envelope, "policy_denied", "case_update")


@probe("addressee_outside_the_area", "policy")
async def addressee_outside(s: Suite):
    """Addressees are asked for, not granted: a Westshire force addressed by
    an Exampleshire school receives nothing."""
    envelope = s.referral(ATTACKER, addressees=["westshire-police"])
    verdict, ledger = await s[ATTACKER].send_until_answered(envelope)
    if verdict is None:
        return outcome(False, describe(verdict), envelope.id, ledger)
    if "westshire-police" in verdict.recipients:
        return outcome(False, f"westshire-police granted a copy: {describe(verdict)}", envelope.id, ledger)
    return outcome(True, f"{describe(verdict)}; westshire-police not among them", envelope.id, ledger)


async def in_reply_to_victims_referral(s: Suite, name_it) -> dict:
    """A correction naming school-b's referral, which school-a neither sent
    nor received (as `name_it(sender, id)` writes it)."""
    _, ledger, problem = await s.accepted(VICTIM, s.referral(VICTIM), "school-b's referral")
    if problem:
        return outcome(False, problem, None, ledger)
    victim_id = ledger[0]["envelope_id"]
    # Routed (its receipt written) before it is answered: read by the council.
    kind, why = await s.inbox[COUNCIL].wait_for(VICTIM, victim_id, wait=15)
    if kind is None:
        return outcome(False, f"school-b's referral {victim_id} never reached the council ({why})", None, ledger)
    envelope = s.envelope(ATTACKER, {
        "legalBasis": "DPA-2018-sch1-p18",
        "inReplyTo": name_it(VICTIM, victim_id),
        "correction": {"action": "ACTION_WITHDRAWN", "reasonCode": "wrong-person", "correction": "Referred in error"},
    })
    result = await s.send_expecting(ATTACKER, envelope, "policy_denied", "neither sent nor received")
    result["ledger"] = ledger + result["ledger"]
    return result


@probe("in_reply_to_another_agencys_envelope", "policy")
async def in_reply_to_foreign(s: Suite):
    """By its id."""
    return await in_reply_to_victims_referral(s, lambda sender, id_: id_)


@probe("in_reply_to_another_agencys_envelope_by_sender", "policy")
async def in_reply_to_foreign_scoped(s: Suite):
    """The same, naming it SENDER/ID."""
    return await in_reply_to_victims_referral(s, lambda sender, id_: f"{sender}/{id_}")


# ---------------------------------------------------------------------------
# Frames: oversized, malformed, empty; garbage and huge tokens.

def _frame_probe(name, code, mentions, payload, token=lambda s: s[ATTACKER].token()):
    async def run(s: Suite):
        a = s[ATTACKER]
        verdict = await a.send(payload(s), token(s), timeout=15)
        return refusal_outcome(ATTACKER, verdict, code, mentions)

    probe(name, "frames")(run)


def _truncated(s):
    whole = s.referral(ATTACKER).SerializeToString()
    return whole[: len(whole) - 3]


_frame_probe("oversized_envelope", "too_large", "", lambda s: b"\x0a" * (s.max_envelope_bytes + 1))
_frame_probe("malformed_protobuf", "malformed_envelope", "Envelope", lambda s: b"\xff\xff\xff\x01\x02")
_frame_probe("truncated_envelope", "malformed_envelope", "", _truncated)
_frame_probe("invalid_utf8_in_id", "malformed_envelope", "", lambda s: b"\x0a\x02\xc3\x28")
_frame_probe("json_on_the_protobuf_door", "malformed_envelope", "",
             lambda s: json_format.MessageToJson(s.referral(ATTACKER)).encode())
_frame_probe("empty_body", "invalid_field", "id", lambda s: b"")
_frame_probe("garbage_token", "invalid_token", "three", lambda s: _genuine(s), lambda s: "not-a-token")
_frame_probe("huge_token", "invalid_token", "longer than", lambda s: _genuine(s),
             lambda s: f"{'a' * 100_000}.{'b' * 100_000}.c")


@probe("over_nats_max_payload", "frames")
async def over_max_payload(s: Suite):
    """A frame larger than the server's max_payload, written by hand (nats-py
    refuses to send one): the server must refuse it before the gateway sees it."""
    url = urlparse(s.url.split(",")[0])
    if url.scheme not in ("nats", ""):
        return outcome(False, f"cannot write a raw frame over {url.scheme}://")
    reader, writer = await asyncio.open_connection(url.hostname, url.port or 4222)
    try:
        info = json.loads((await reader.readline()).decode().removeprefix("INFO "))
        seed = (s.keys / f"{ATTACKER}.nk").read_bytes().strip()
        kp = nkeys.from_seed(seed)
        signature = b64url(kp.sign(info["nonce"].encode()))
        connect = {"verbose": False, "pedantic": False, "protocol": 1, "headers": True, "no_responders": True,
                   "nkey": kp.public_key.decode(), "sig": signature, "name": "hostile-raw-frame"}
        writer.write(f"CONNECT {compact(connect)}\r\nPING\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        if not line.startswith(b"PONG"):
            return outcome(False, f"login refused: {line.decode().strip()}")
        limit = int(info.get("max_payload", 1048576))
        size = limit + 1024
        reply = f"_INBOX_{ATTACKER}.raw"
        # The server reads the size on the PUB line and refuses it there:
        # the payload is not even sent (a server that took it would wait for
        # it, and answer nothing until it came).
        writer.write(f"SUB {reply} 1\r\nPUB liaison.ingress.{ATTACKER}.envelope {reply} {size}\r\n".encode())
        await writer.drain()
        answer = b""
        try:
            while b"-ERR" not in answer:
                chunk = await asyncio.wait_for(reader.read(4096), 5)
                if not chunk:
                    break
                answer += chunk
        except (asyncio.TimeoutError, ConnectionError):
            pass
        if b"-ERR" not in answer:
            # Not refused on the PUB line: send the payload, and see what comes.
            try:
                writer.write(b"\x0a" * size + b"\r\nPING\r\n")
                await writer.drain()
                answer += await asyncio.wait_for(reader.read(4096), 5)
            except (asyncio.TimeoutError, ConnectionError):
                pass
        text = answer.decode(errors="replace")
        if "MSG " in text:
            return outcome(False, f"a {size}-byte frame (max_payload {limit}) was answered by the gateway")
        if "Maximum Payload Violation" in text:
            return outcome(True, f"NATS: -ERR 'Maximum Payload Violation' for {size} bytes (max_payload {limit});"
                                 " connection closed")
        return outcome(False, f"no Maximum Payload Violation for {size} bytes (max_payload {limit}): {text[:120]!r}")
    finally:
        writer.close()


# ---------------------------------------------------------------------------
# A flood.

@probe("flood", "flood")
async def flood(s: Suite):
    """Bursts of envelopes at once, with a valid token, until the gateway
    answers rate_limited (at most 4 bursts of 800). Each must be answered with
    a refusal (the bodies are not envelopes: what passes the rate limit is
    refused malformed_envelope), and none may time out."""
    a = s[ATTACKER]
    token = a.token()
    codes: dict[str, int] = {}
    unanswered = 0
    for _ in range(4):
        verdicts = await asyncio.gather(*(a.send(b"\xff\x01", token, timeout=60) for _ in range(800)))
        for v in verdicts:
            if v is None:
                unanswered += 1
            else:
                key = v.code if v.outcome == REFUSED else Verdict.Outcome.Name(v.outcome)
                codes[key] = codes.get(key, 0) + 1
        if codes.get("rate_limited"):
            break
    ledger = [refused_entry(ATTACKER, code, None, n) for code, n in sorted(codes.items())
              if code not in ("unavailable",) and not code.startswith("OUTCOME_")]
    observed = f"{sum(codes.values()) + unanswered} sent: " + ", ".join(f"{c} {n}" for c, n in sorted(codes.items()))
    if unanswered:
        observed += f", {unanswered} unanswered"
    held = unanswered == 0 and codes.get("rate_limited", 0) > 0 and set(codes) <= {"rate_limited", "malformed_envelope"}
    if not held:
        observed += " (expected every one answered rate_limited or malformed_envelope, some rate_limited)"
    return outcome(held, observed, None, ledger)


# ---------------------------------------------------------------------------

async def gateway_alive(s: Suite) -> dict:
    """A genuine referral from the attacker is still accepted and the police read it."""
    envelope = s.referral(ATTACKER, s.new_id("alive"))
    verdict, ledger = await s[ATTACKER].send_until_answered(envelope, wait=60)
    if verdict is None or verdict.outcome != ACCEPTED:
        return outcome(False, f"genuine referral: {describe(verdict)}", envelope.id, ledger)
    kind, why = await s.inbox[POLICE].wait_for(ATTACKER, envelope.id)
    if kind != "referral":
        return outcome(False, f"ACCEPTED, but the police did not read it ({why})", envelope.id, ledger)
    return outcome(True, f"{describe(verdict)}; read by the police", envelope.id, ledger)


def emit(name: str, cls: str, sender: str, result: dict):
    line = {"probe": name, "class": cls, **result, "sender": sender}
    line = {k: line[k] for k in ("probe", "class", "held", "observed", "envelope_id", "sender", "ledger")}
    print(compact(line), flush=True)


async def run(args) -> int:
    suite = Suite(args)
    wanted = set(args.only or [])
    await suite.start()
    failed = []
    try:
        for name, cls, sender, fn in PROBES:
            if wanted and name not in wanted and cls not in wanted:
                continue
            try:
                result = await fn(suite)
            except Exception as e:  # a probe that breaks is not a probe that held
                result = outcome(False, f"probe error: {type(e).__name__}: {e}")
            emit(name, cls, sender, result)
            if not result["held"]:
                failed.append(name)
        alive = await gateway_alive(suite)
        emit("gateway_alive", "alive", ATTACKER, alive)
        if not alive["held"]:
            failed.append("gateway_alive")
    finally:
        await suite.close()
    total = sum(1 for name, cls, *_ in PROBES if not wanted or name in wanted or cls in wanted)
    print(f"hostile_agency: {total - len([f for f in failed if f != 'gateway_alive'])} of {total} probes held"
          + (f"; NOT HELD: {', '.join(failed)}" if failed else "; the gateway is alive"), file=sys.stderr)
    return 1 if failed else 0


def arguments():
    env = os.environ.get
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nats", default=env("LIAISON_NATS_URL"), help="NATS URL [env LIAISON_NATS_URL]")
    p.add_argument("--keys", default="deploy/agencies/dev-keys",
                   help="directory of the agencies' AGENCY.nk and AGENCY.pem [default: deploy/agencies/dev-keys]")
    p.add_argument("--audience", default="liaison-gateway", help="the tokens' aud")
    p.add_argument("--max-envelope-bytes", type=int, default=262144,
                   help="the gateway's gateway.max_envelope_bytes [default 262144]")
    p.add_argument("--only", action="append", metavar="PROBE_OR_CLASS",
                   help="run only these probes or classes (repeatable; the alive check always runs)")
    p.add_argument("--list", action="store_true", help="list the probes and exit")
    args = p.parse_args()
    if args.list:
        for name, cls, sender, _ in PROBES:
            print(f"{cls:9} {name} (as {sender})")
        sys.exit(0)
    if not args.nats:
        p.error("missing --nats (or LIAISON_NATS_URL)")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(run(arguments())))
