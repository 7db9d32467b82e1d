#!/usr/bin/env python3
"""Writes (or, with --check, checks) subject-token-vectors.json: subject tokens
computed from the *normalised* identifiers by this independent implementation
of the construction in docs/wire-contract.md ("Subject tokens"), with Python's
hmac module. The Rust test (clients/rust/tests/subject_tokens.rs) checks that
the client library normalises each input to the same fields and gets the same
token. Standard library only: python3 subject_token_vectors.py [--check]"""
import base64, hashlib, hmac, json, pathlib, sys

KEY = bytes(range(32))
HERE = pathlib.Path(__file__).parent
OUT = HERE / "subject-token-vectors.json"

def token(key, name, dob, other):
    msg = b"liaison.subject-token.v1\x00"
    def field(tag, value):
        tag, value = tag.encode(), value.encode()
        return bytes([len(tag)]) + tag + len(value).to_bytes(4, "big") + value
    if name:
        msg += field("name", name) + field("dob", dob)
    for scheme, value in other:
        msg += field("id:" + scheme, value)
    mac = hmac.new(key, msg, hashlib.sha256).digest()
    return "st1:" + base64.urlsafe_b64encode(mac).decode().rstrip("=")

# (input name, input dob, input other) -> (normalised name, dob, other)
CASES = [
    (("Alex Example", "2010-04-12", []), ("alex example", "2010-04-12", [])),
    (("EXAMPLE, Alex", "12/04/2010", []), ("alex example", "2010-04-12", [])),
    (("  alex   example ", "12 Apr 2010", []), ("alex example", "2010-04-12", [])),
    (("Zoë O'Brien-Smith", "1 Feb 2008", []), ("zoe obrien smith", "2008-02-01", [])),
    (("Siobhán Ó Súilleabháin", "29.02.2012", []), ("siobhan o suilleabhain", "2012-02-29", [])),
    (("Jürgen Straße", "19991231", []), ("jurgen strasse", "1999-12-31", [])),
    (("Фёдор Достоевский", "11/11/1921", []), ("федор достоевскии", "1921-11-11", [])),
    (("Alex Example", "2010-04-12", [["NHS", "943 476 5919"]]),
     ("alex example", "2010-04-12", [["nhs", "9434765919"]])),
    (("", "", [["nhs", "9434765919"]]), ("", "", [["nhs", "9434765919"]])),
    (("Sam Sample", "2009-01-30", [["upn", "a12345678901b"], ["pnc", "2010/0012345a"], ["ni", "QQ 12 34 56 C"]]),
     ("sam sample", "2009-01-30", [["nino", "QQ123456"], ["pnc", "10/12345A"], ["upn", "A12345678901B"]])),
]

REFUSED = [
    {"name": "Alex Example", "dob": "", "other": [], "says": "go together"},
    {"name": "", "dob": "", "other": [], "says": "no identifiers"},
    {"name": "Alex Example", "dob": "12/04/10", "other": [], "says": "two-digit year"},
    {"name": "Alex Example", "dob": "31/04/2010", "other": [], "says": "not a day"},
    {"name": "Alex Example", "dob": "2010-04-12", "other": [["nhs", "943 476 5918"]], "says": "check digit"},
    {"name": "!!!", "dob": "2010-04-12", "other": [], "says": "no letters"},
]

def vectors():
    out = []
    for (name, dob, other), (n_name, n_dob, n_other) in CASES:
        out.append({
            "input": {"name": name, "dob": dob, "other": other},
            "normalised": {"name": n_name, "dob": n_dob, "other": n_other},
            "token": token(KEY, n_name, n_dob, n_other),
        })
    return {
        "key": base64.urlsafe_b64encode(KEY).decode().rstrip("="),
        "vectors": out,
        "refused": REFUSED,
    }

text = json.dumps(vectors(), ensure_ascii=False, indent=2) + "\n"
if "--check" in sys.argv:
    sys.exit(0 if OUT.read_text(encoding="utf-8") == text else "subject-token-vectors.json is stale")
OUT.write_text(text, encoding="utf-8")
