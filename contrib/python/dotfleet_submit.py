#!/usr/bin/env python3
"""Submit a dotfleet attestation from any machine with Python 3 and ssh-keygen: standard library only.

    python3 dotfleet_submit.py --app https://dotfleet.example.org --github-repo robin/fleet \
        --host kestrel --key ~/.ssh/id_ed25519 --predicate predicate.json

predicate.json holds the predicate's fields in any order (docs/attestation.md lists them);
`host` defaults to --host and `issuedAt` to now. This script writes the statement in its one
canonical form (docs/attestation.md, "The canonical form"), signs those exact bytes with
`ssh-keygen -Y sign -n dotfleet-attestation`, and posts them to the app. It prints the app's
answer and exits 0 when the attestation is recorded (201 accepted, 200 already-recorded),
1 when it is refused, 4 when it could not get an answer (send it again later: that is safe).
"""
import argparse
import base64
import datetime
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://dotfleet.dev/attestation/host-apply/v1"
NAMESPACE = "dotfleet-attestation"

# The key order of every object, as the canonical form requires.
PREDICATE_KEYS = ["host", "appliedCommit", "rolloutTarget", "renderHash", "policyHash", "tools", "drift", "tests", "status", "agentVersion", "sequence", "issuedAt"]
TOOL_KEYS = ["name", "version", "requirement", "ok"]
DRIFT_KEYS = ["path", "type"]
TEST_KEYS = ["name", "status", "durationMs", "output"]  # output: left out when absent


def ordered(obj, keys, optional=()):
    unknown = set(obj) - set(keys)
    if unknown:
        raise SystemExit("dotfleet_submit: unknown field(s): %s" % ", ".join(sorted(unknown)))
    out = {}
    for k in keys:
        if k in obj:
            out[k] = obj[k]
        elif k not in optional:
            raise SystemExit("dotfleet_submit: missing field: %s" % k)
    return out


def canonical(statement):
    """The signed bytes: 2-space indentation, ": " and "," separators, raw UTF-8, a final newline."""
    text = json.dumps(statement, indent=2, separators=(",", ": "), ensure_ascii=False, allow_nan=False)
    return (text + "\n").encode("utf-8")


def build(predicate, owner, repo):
    p = ordered(predicate, PREDICATE_KEYS)
    p["tools"] = [ordered(t, TOOL_KEYS) for t in p["tools"]]
    p["drift"] = [ordered(d, DRIFT_KEYS) for d in p["drift"]]
    p["tests"] = [ordered(t, TEST_KEYS, optional=("output",)) for t in p["tests"]]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "git+https://github.com/%s/%s" % (owner, repo), "digest": {"gitCommit": p["appliedCommit"]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": p,
    }


def sign(payload, key):
    with tempfile.TemporaryDirectory() as d:
        msg = os.path.join(d, "attestation.json")
        with open(msg, "wb") as f:
            f.write(payload)
        r = subprocess.run(["ssh-keygen", "-Y", "sign", "-q", "-f", key, "-n", NAMESPACE, msg], capture_output=True)
        if r.returncode != 0:
            raise SystemExit("dotfleet_submit: ssh-keygen -Y sign failed: %s" % r.stderr.decode(errors="replace").strip())
        with open(msg + ".sig", "r", encoding="ascii") as f:
            return f.read()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--app", required=True, help="the dotfleet app's URL")
    ap.add_argument("--github-repo", required=True, help="OWNER/REPO of the fleet repository")
    ap.add_argument("--host", required=True)
    ap.add_argument("--key", required=True, help="the host's SSH private key (ssh-keygen -Y sign -f)")
    ap.add_argument("--predicate", required=True, help="a JSON file with the predicate's fields")
    ap.add_argument("--out", help="also write the signed bytes and signature here (NAME.json, NAME.json.sig)")
    ap.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args()
    owner, _, repo = a.github_repo.partition("/")
    with open(a.predicate, encoding="utf-8") as f:
        predicate = json.load(f)
    predicate.setdefault("host", a.host)
    predicate.setdefault("issuedAt", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    payload = canonical(build(predicate, owner, repo))
    signature = sign(payload, a.key)
    if a.out:
        with open(a.out, "wb") as f:
            f.write(payload)
        with open(a.out + ".sig", "w", encoding="ascii") as f:
            f.write(signature)
    body = json.dumps({"attestation": base64.b64encode(payload).decode("ascii"), "signature": signature}).encode("utf-8")
    url = "%s/dotfleet/v1/attestations/%s/%s/%s" % (a.app.rstrip("/"), owner, repo, a.host)
    req = urllib.request.Request(url, data=body, method="POST", headers={"content-type": "application/json", "user-agent": "dotfleet-python"})
    try:
        with urllib.request.urlopen(req, timeout=a.timeout) as res:
            status, answer = res.status, res.read()
    except urllib.error.HTTPError as e:
        status, answer = e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        print("dotfleet_submit: no answer from %s: %s; send it again later" % (url, e), file=sys.stderr)
        return 4
    print("%d %s" % (status, answer.decode("utf-8", errors="replace").strip()))
    if status in (200, 201):
        return 0
    return 4 if status in (408, 429) or status >= 500 else 1


if __name__ == "__main__":
    sys.exit(main())
