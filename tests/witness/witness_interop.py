"""Drives a Liaison witness from outside, as any transparency log would.

Nothing here is Liaison's code: the checkpoint notes (C2SP signed-note,
tlog-checkpoint), the RFC 6962 Merkle trees and consistency proofs, the
tlog-witness requests and the cosignature/v1 check are written from the C2SP
specifications and RFC 6962, with Python's `cryptography` for Ed25519 and
`urllib` for HTTP.

usage: witness_interop.py WITNESS_URL WITNESS_VKEY LOG_KEY_PEM LOG_ORIGIN
Prints one line per check and a JSON summary; exits 0 only if every check held.
"""

import base64
import hashlib
import json
import sys
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

EM_DASH = "\u2014"


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list) -> bytes:
    """RFC 6962 2.1: the Merkle tree hash of a list of leaf hashes."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split_point(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def subproof(m: int, leaves: list, whole: bool) -> list:
    """RFC 6962 2.1.2: SUBPROOF(m, D[n], b)."""
    n = len(leaves)
    if m == n:
        return [] if whole else [mth(leaves)]
    k = split_point(n)
    if m <= k:
        return subproof(m, leaves[:k], whole) + [mth(leaves[k:])]
    return subproof(m - k, leaves[k:], False) + [mth(leaves[:k])]


def consistency(m: int, leaves: list) -> list:
    return subproof(m, leaves, True) if 0 < m < len(leaves) else []


class Log:
    """A log that signs C2SP checkpoints with an Ed25519 key (signed-note type 0x01)."""

    def __init__(self, origin: str, key: Ed25519PrivateKey):
        self.origin = origin
        self.key = key
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = hashlib.sha256(origin.encode() + b"\n\x01" + public).digest()[:4]

    def checkpoint(self, leaves: list) -> str:
        body = "%s\n%d\n%s\n" % (
            self.origin,
            len(leaves),
            base64.b64encode(mth(leaves)).decode(),
        )
        signature = self.key.sign(body.encode())
        line = "%s %s %s\n" % (
            EM_DASH,
            self.origin,
            base64.b64encode(self.key_id + signature).decode(),
        )
        return body + "\n" + line


class Cosignatures:
    """Checks cosignature/v1 lines (C2SP tlog-cosignature, Ed25519, type 0x04)."""

    def __init__(self, vkey: str):
        name, key_id, key = vkey.strip().split("+", 2)
        raw = base64.b64decode(key)
        if raw[0] != 0x04 or len(raw) != 33:
            raise ValueError("not a cosignature/v1 Ed25519 verifier key")
        public = raw[1:]
        expected = hashlib.sha256(name.encode() + b"\n\x04" + public).digest()[:4]
        if expected.hex() != key_id:
            raise ValueError("the verifier key's id does not match its name and key")
        self.name = name
        self.key_id = expected
        self.key = Ed25519PublicKey.from_public_bytes(public)

    def verify(self, note: str, lines: str) -> int:
        body = note[: note.index("\n\n") + 1]
        for line in lines.splitlines():
            if not line.startswith(EM_DASH + " "):
                raise ValueError("not a signature line: %r" % line)
            name, blob = line[2:].split(" ", 1)
            blob = base64.b64decode(blob)
            if name != self.name or blob[:4] != self.key_id:
                continue
            if len(blob) != 4 + 8 + 64:
                raise ValueError("a cosignature/v1 is 76 bytes")
            timestamp = int.from_bytes(blob[4:12], "big")
            message = ("cosignature/v1\ntime %d\n" % timestamp) + body
            self.key.verify(blob[12:], message.encode())  # raises if it does not verify
            return timestamp
        raise ValueError("no cosignature by %s" % self.name)


def add_checkpoint(url: str, old: int, proof: list, note: str):
    body = "old %d\n" % old
    body += "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    body += "\n" + note
    request = urllib.request.Request(
        url.rstrip("/") + "/add-checkpoint", data=body.encode(), method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def main() -> int:
    url, vkey, pem, origin = sys.argv[1:5]
    with open(pem, "rb") as f:
        log = Log(origin, serialization.load_pem_private_key(f.read(), password=None))
    witness = Cosignatures(vkey)
    stranger = Log(origin, Ed25519PrivateKey.generate())
    elsewhere = Log("elsewhere.example/log", Ed25519PrivateKey.generate())
    leaves = [leaf_hash(b"record %d" % i) for i in range(20)]
    results = []

    def check(name: str, ok: bool, detail: str = ""):
        results.append({"check": name, "ok": bool(ok), "detail": detail})
        print("%s %s %s" % ("ok  " if ok else "FAIL", name, detail))

    first = log.checkpoint(leaves[:3])
    status, _, body = add_checkpoint(url, 0, [], first)
    check("a first checkpoint is cosigned", status == 200, "%d %s" % (status, body.strip()))
    if status == 200:
        try:
            check("its cosignature/v1 verifies", witness.verify(first, body) > 0)
        except Exception as e:  # noqa: BLE001 (report, do not stop)
            check("its cosignature/v1 verifies", False, repr(e))
    status, kind, body = add_checkpoint(url, 0, [], log.checkpoint(leaves[:5]))
    check(
        "a stale old size: 409, text/x.tlog.size, the size last cosigned",
        status == 409 and kind.startswith("text/x.tlog.size") and body == "3\n",
        "%d %s %r" % (status, kind, body),
    )
    second = log.checkpoint(leaves[:7])
    status, _, body = add_checkpoint(url, 3, consistency(3, leaves[:7]), second)
    check("the next checkpoint, with its RFC 6962 consistency proof, is cosigned", status == 200, "%d %s" % (status, body.strip()))
    if status == 200:
        try:
            check("its cosignature/v1 verifies", witness.verify(second, body) > 0)
        except Exception as e:  # noqa: BLE001
            check("its cosignature/v1 verifies", False, repr(e))
    forked = list(leaves[:7])
    forked[2] = leaf_hash(b"rewritten")
    status, _, body = add_checkpoint(url, 7, [], log.checkpoint(forked))
    check("another root at the size cosigned (a fork): 409", status == 409, "%d %s" % (status, body.strip()))
    rewritten = list(leaves[:9])
    rewritten[1] = leaf_hash(b"rewritten")
    status, _, body = add_checkpoint(url, 7, consistency(7, rewritten), log.checkpoint(rewritten))
    check("a rewritten history whose proof fails: 422", status == 422, "%d %s" % (status, body.strip()))
    status, _, _ = add_checkpoint(url, 7, consistency(7, leaves[:9]), stranger.checkpoint(leaves[:9]))
    check("signed by a key the witness does not trust: 403", status == 403, str(status))
    status, _, _ = add_checkpoint(url, 0, [], elsewhere.checkpoint(leaves[:2]))
    check("a log the witness does not follow: 404", status == 404, str(status))
    status, _, _ = add_checkpoint(url, 9, [], log.checkpoint(leaves[:7]))
    check("an old size above the checkpoint's: 400", status == 400, str(status))
    third = log.checkpoint(leaves)
    status, _, body = add_checkpoint(url, 7, consistency(7, leaves), third)
    ok = status == 200
    if ok:
        try:
            witness.verify(third, body)
        except Exception:  # noqa: BLE001
            ok = False
    check("after all that, the honest log goes on being cosigned", ok, "%d" % status)
    print(json.dumps({"checks": len(results), "failed": sum(1 for r in results if not r["ok"])}))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
