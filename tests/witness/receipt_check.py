"""Checks a Liaison receipt from outside, with only the public keys.

Nothing here is Liaison's code. It is written from the C2SP specifications and
RFC 9162, with Python's `cryptography`:
- tlog-proof: the index, the inclusion proof and the checkpoint;
- signed-note: the log's Ed25519 signature, signature type 0x01;
- tlog-cosignature v1: the witnesses' cosignatures, type 0x04;
- RFC 9162 2.1.3.2: the inclusion-proof verification.

usage: receipt_check.py RECEIPT.json LOG_VKEY [WITNESS_VKEY ...]
Prints what each record says, then "verified N records, cosigned by ...";
exits 0 only if every proof verifies, and every witness named has cosigned.
"""

import base64
import hashlib
import json
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

EM_DASH = "\u2014"


def parse_vkey(vkey: str, kind: int):
    name, key_id, key = vkey.strip().split("+", 2)
    raw = base64.b64decode(key)
    if raw[0] != kind or len(raw) != 33:
        raise ValueError("%s is not a type 0x%02x Ed25519 key" % (name, kind))
    expected = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + raw[1:]).digest()[:4]
    if expected.hex() != key_id:
        raise ValueError("the key id of %s does not match" % name)
    return name, expected, Ed25519PublicKey.from_public_bytes(raw[1:])


def signatures(note: str):
    body, sigs = note.split("\n\n", 1)
    body += "\n"
    for line in sigs.splitlines():
        name, blob = line[len(EM_DASH) + 1 :].split(" ", 1)
        yield body, name, base64.b64decode(blob)


def check_log(note: str, vkey: str):
    name, key_id, key = parse_vkey(vkey, 0x01)
    for body, signer, blob in signatures(note):
        if signer == name and blob[:4] == key_id:
            key.verify(blob[4:], body.encode())  # raises if it does not verify
            origin, size, root = body.splitlines()[:3]
            return int(size), base64.b64decode(root)
    raise ValueError("the checkpoint is not signed by the log %s" % name)


def check_cosignature(note: str, vkey: str) -> bool:
    name, key_id, key = parse_vkey(vkey, 0x04)
    for body, signer, blob in signatures(note):
        if signer == name and blob[:4] == key_id and len(blob) == 76:
            timestamp = int.from_bytes(blob[4:12], "big")
            message = ("cosignature/v1\ntime %d\n" % timestamp) + body
            key.verify(blob[12:], message.encode())
            return True
    return False


def verify_inclusion(index: int, size: int, leaf: bytes, proof: list, root: bytes) -> bool:
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def main() -> int:
    receipt_file, log_vkey = sys.argv[1:3]
    witness_vkeys = sys.argv[3:]
    with open(receipt_file) as f:
        receipt = json.load(f)
    if receipt.get("format") != "liaison-receipt/v1" or not receipt.get("proofs"):
        print("FAIL not a receipt")
        return 1
    cosigned_by = None
    for text in receipt["proofs"]:
        head, note = text.split("\n\n", 1)
        lines = head.split("\n")
        if lines[0] != "c2sp.org/tlog-proof@v1" or not lines[1].startswith("extra "):
            print("FAIL not a tlog-proof with the record as extra")
            return 1
        record = base64.b64decode(lines[1][6:])
        index = int(lines[2][len("index ") :])
        proof = [base64.b64decode(l) for l in lines[3:]]
        size, root = check_log(note, log_vkey)
        leaf = hashlib.sha256(b"\x00" + record).digest()
        if not verify_inclusion(index, size, leaf, proof, root):
            print("FAIL record %d is not in the checkpoint of %d records" % (index, size))
            return 1
        witnesses = [v.split("+", 1)[0] for v in witness_vkeys if check_cosignature(note, v)]
        if len(witnesses) != len(witness_vkeys):
            print("FAIL record %d: the checkpoint lacks a witness's cosignature" % index)
            return 1
        cosigned_by = witnesses
        print("ok   record %d (%d bytes) in the checkpoint of %d records" % (index, len(record), size))
    print(
        "verified %d records, cosigned by %s"
        % (len(receipt["proofs"]), ", ".join(cosigned_by) or "no witness")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
