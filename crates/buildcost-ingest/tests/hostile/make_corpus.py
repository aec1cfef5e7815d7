#!/usr/bin/env python3
"""Writes corpus.json: hostile messages and the outcome the spec gives each.

Each entry has a `name`, an `expect` ("accepted" or a reject reason) and its bytes as `text`
(UTF-8), `hex` (raw bytes), or `repeat` ({prefix, unit, times, suffix}: for the huge ones).
Re-run after editing: python3 make_corpus.py > corpus.json
With --seeds DIR it writes each entry under 1 MB as a file of DIR instead: a seed corpus for
`cargo fuzz run decode DIR` (docs/reliability.md).
"""
import json
import os
import sys

BASE = {
    "schema_version": 1, "event_id": "h-0", "source": "gitlab", "build_id": "1",
    "pipeline": "p", "repository": "acme/r", "team": "payments",
    "author": "Hostile Person", "started_at": "2026-11-01T10:00:00Z",
    "finished_at": "2026-11-01T10:30:00Z", "status": "failure", "runner_class": "small",
    "log_excerpt": "error: expected ';' (Hostile Person broke it)",
}
entries = []
n = 0


def ev(**changes):
    global n
    n += 1
    e = dict(BASE, event_id=f"h-{n}")
    for k, v in changes.items():
        if v is DROP:
            e.pop(k, None)
        else:
            e[k] = v
    return e


DROP = object()


def add(name, expect, text=None, hexs=None, repeat=None):
    entry = {"name": name, "expect": expect}
    if text is not None:
        entry["text"] = text
    if hexs is not None:
        entry["hex"] = hexs
    if repeat is not None:
        entry["repeat"] = repeat
    entries.append(entry)


def js(e):
    return json.dumps(e, ensure_ascii=False)


valid = js(ev())
add("valid baseline", "accepted", valid)
# Not JSON, or not an object.
add("empty message", "invalid_json", "")
add("whitespace only", "invalid_json", " \n\t ")
add("null", "invalid_json", "null")
add("array", "invalid_json", "[]")
add("string", "invalid_json", '"a string"')
add("number", "invalid_json", "42")
add("truncated in the middle", "invalid_json", valid[: len(valid) // 2])
add("truncated before the last brace", "invalid_json", valid[:-1])
add("trailing garbage", "invalid_json", valid + "x")
add("two objects", "invalid_json", valid + js(ev()))
add("comment", "invalid_json", "/* c */" + js(ev()))
add("single quotes", "invalid_json", js(ev()).replace('"', "'"))
add("leading zero", "invalid_json", js(ev(cpu_cores=1)).replace('"cpu_cores": 1', '"cpu_cores": 01'))
add("hex number", "invalid_json", js(ev(cpu_cores=1)).replace('"cpu_cores": 1', '"cpu_cores": 0x10'))
add("NaN literal", "invalid_json", js(ev(cpu_cores=1)).replace('"cpu_cores": 1', '"cpu_cores": NaN'))
add("Infinity literal", "invalid_json", js(ev(memory_gb=1)).replace('"memory_gb": 1', '"memory_gb": -Infinity'))
add("a known field twice", "invalid_json", js(ev())[:-1] + ', "team": "other"}')
add("deeply nested array", "invalid_json", repeat={"prefix": "", "unit": "[", "times": 60000, "suffix": ""})
add("deeply nested array over 64 KiB", "too_large", repeat={"prefix": "", "unit": "[", "times": 100000, "suffix": ""})
# `labels` must be an object of strings: a nested one is a wrong type.
add("deeply nested object in labels", "invalid_field",
    repeat={"prefix": js(ev())[:-1] + ', "labels": ', "unit": '{"a":', "times": 5000, "suffix": "1" + "}" * 5000 + "}"})
# Unknown fields are ignored (spec section 2), however deep: skipped without recursion.
add("nesting past the parser's limit in an unknown field", "accepted",
    js(ev())[:-1] + ', "extra": ' + "[" * 200 + "]" * 200 + "}")
add("30,000 levels of nesting in an unknown field", "accepted",
    js(ev())[:-1] + ', "extra": ' + "[" * 30000 + "]" * 30000 + "}")
add("30,000 unclosed levels in an unknown field", "invalid_json",
    js(ev())[:-1] + ', "extra": ' + "[" * 30000 + "}")
# Bytes that are not UTF-8, and surrogates.
add("invalid UTF-8 in team", "invalid_json", hexs=js(ev(team="pay")).encode().hex().replace("706179", "7061ff79"))
add("overlong UTF-8 slash", "invalid_json", hexs=js(ev(repository="acme/r")).encode().hex().replace("2f", "c0af", 1))
add("UTF-8 byte order mark", "invalid_json", hexs="efbbbf" + js(ev()).encode().hex())
add("UTF-16 encoded", "invalid_json", hexs=js(ev()).encode("utf-16-le").hex())
add("lone high surrogate in team", "invalid_json", js(ev(team="pay")).replace('"team": "pay"', '"team": "pay\\uD800"'))
add("lone low surrogate in author", "invalid_json", js(ev()).replace('"author": "Hostile Person"', '"author": "\\uDC00 Hostile Person"'))
add("raw control character in a string", "invalid_json", js(ev(team="pay")).replace('"team": "pay"', '"team": "pa\x01y"'))
# Versions.
add("schema_version missing", "unsupported_version", js(ev(schema_version=DROP)))
add("schema_version as a string", "unsupported_version", js(ev(schema_version="1")))
add("schema_version 2", "unsupported_version", js(ev(schema_version=2)))
add("schema_version huge", "unsupported_version", js(ev()).replace('"schema_version": 1', '"schema_version": 99999999999999999999999999'))
add("schema_version 1.0", "accepted", js(ev()).replace('"schema_version": 1', '"schema_version": 1.0'))
# Missing fields.
for field in ["event_id", "team", "started_at", "runner_class"]:
    add(f"{field} missing", "missing_field", js(ev(**{field: DROP})))
add("team null", "missing_field", js(ev(team=None)))
add("every required field missing", "missing_field", '{"schema_version": 1, "author": "Hostile Person"}')
# Wrong types, one per field.
wrong = {
    "event_id": 1, "source": True, "build_id": [], "pipeline": {}, "repository": 1.5,
    "branch": 7, "commit": False, "trigger": 1, "team": 1, "product": [], "author": 1,
    "queued_at": 1, "started_at": 1, "finished_at": True, "status": 1, "failure_stage": 1,
    "failure_category": 1, "log_excerpt": 1, "runner_class": 1, "cpu_cores": "2",
    "memory_gb": "4", "gpus": "1", "attempt": "1", "superseded": "yes",
    "correlation_id": 1, "labels": [],
}
for field, value in wrong.items():
    add(f"{field} of the wrong type", "invalid_field", js(ev(**{field: value})))
add("a label that is not a string", "invalid_field", js(ev(labels={"a": 1})))
add("NaN as a string", "invalid_field", js(ev(cpu_cores="NaN")))
# Ranges and limits.
add("empty team", "invalid_field", js(ev(team="")))
add("blank team", "invalid_field", js(ev(team="   ")))
add("team of 256 characters", "accepted", js(ev(team="t" * 256)))
add("team of 257 characters", "invalid_field", js(ev(team="t" * 257)))
add("team of 60,000 characters", "invalid_field", js(ev(team="t" * 60000)))
add("event_id of 257 characters", "invalid_field", js(ev(event_id="e" * 257)))
add("log_excerpt over 8 KiB", "invalid_field", js(ev(log_excerpt="x" * 8193)))
add("cpu_cores 0", "invalid_field", js(ev(cpu_cores=0)))
add("cpu_cores negative", "invalid_field", js(ev(cpu_cores=-1)))
add("cpu_cores huge", "invalid_field", js(ev()).replace('"schema_version": 1,', '"schema_version": 1, "cpu_cores": 1e400,'))
add("memory_gb negative", "invalid_field", js(ev(memory_gb=-0.5)))
add("gpus fractional", "invalid_field", js(ev(gpus=1.5)))
add("gpus negative", "invalid_field", js(ev(gpus=-1)))
add("gpus beyond any machine", "invalid_field", js(ev(gpus=1e30)))
add("attempt 0", "invalid_field", js(ev(attempt=0)))
add("attempt 2.0", "accepted", js(ev(attempt=2.0)))
add("status in capitals", "invalid_field", js(ev(status="SUCCESS")))
add("trigger in capitals", "invalid_field", js(ev(trigger="PUSH")))
add("unknown failure_stage", "invalid_field", js(ev(failure_stage="lunch")))
# SPEC amendment: a control character (U+0000-U+001F, U+007F) in a name or a label is
# `invalid_field`, escaped or not (it would break CSV and Markdown rows).
add("escaped control character in team", "invalid_field", js(ev(team="pay\u0007ments")))
add("newline in team", "invalid_field", js(ev(team="pay\nments")))
add("DEL in repository", "invalid_field", js(ev(repository="acme/r\u007f")))
add("escape sequence in a label", "invalid_field", js(ev(labels={"env": "\u001b[31mprod"})))
add("tab in runner_class", "invalid_field", js(ev(runner_class="small\tx")))
add("newline in log_excerpt", "accepted", js(ev(log_excerpt="error: expected ';'\n\tat x.c:3")))
add("unicode team", "accepted", js(ev(team="zahlungsverkehr-ü")))
add("unknown fields", "accepted", js(ev(extra={"nested": [1, 2, {"x": None}]}, another="x")))
# Sizes.
add("one byte over 64 KiB", "too_large", repeat={"prefix": js(ev())[:-1] + ', "pad": "', "unit": "x", "times": 65536, "suffix": '"}'})
add("10 MB", "too_large", repeat={"prefix": js(ev())[:-1] + ', "pad": "', "unit": "x", "times": 10 * 1024 * 1024, "suffix": '"}'})
# Time.
# SPEC amendment: older than the retention (the test's decoder keeps 20 years) is
# `invalid_timestamp`, not stored and then deleted.
add("year 0", "invalid_timestamp", js(ev(started_at="0000-01-01T00:00:00Z", finished_at="0000-01-01T00:30:00Z")))
add("older than the retention", "invalid_timestamp", js(ev(started_at="2001-01-01T00:00:00Z", finished_at="2001-01-01T00:30:00Z")))
add("year 9999", "invalid_timestamp", js(ev(started_at="9999-12-31T23:00:00Z", finished_at="9999-12-31T23:59:59Z")))
add("negative year", "invalid_timestamp", js(ev(started_at="-0001-01-01T00:00:00Z")))
add("month 13", "invalid_timestamp", js(ev(started_at="2026-13-01T10:00:00Z")))
add("no time zone", "invalid_timestamp", js(ev(started_at="2026-11-01T10:00:00")))
add("offset +25:00", "invalid_timestamp", js(ev(started_at="2026-11-01T10:00:00+25:00")))
add("epoch seconds as a string", "invalid_timestamp", js(ev(started_at="1761991200")))
add("negative duration", "invalid_timestamp", js(ev(started_at="2026-11-01T11:00:00Z")))
add("longer than 7 days", "invalid_timestamp", js(ev(started_at="2026-10-20T10:00:00Z")))
add("queued after it started", "invalid_timestamp", js(ev(queued_at="2026-11-01T10:05:00Z")))
add("other offsets, same instant order", "accepted", js(ev(started_at="2026-11-01T12:00:00+02:00", finished_at="2026-11-01T10:30:00Z")))
# Deployments and requests (SPEC section 12): the same reasons, the author dropped.
DEPLOYMENT = {
    "schema_version": 1, "type": "deployment", "source": "argocd", "repository": "acme/r",
    "commit": "9f2c1e0", "environment": "Production", "team": "payments", "status": "success",
    "finished_at": "2026-11-01T10:30:00Z", "author": "Hostile Person", "correlation_ids": ["PAY-1"],
}
REQUEST = {
    "schema_version": 1, "type": "request", "source": "jira", "correlation_id": "PAY-1",
    "requested_at": "2026-10-01T10:30:00Z", "reporter": "Hostile Person",
    "title": "Hostile Person wants it",
}


def dep(**changes):
    e = ev(**{k: v for k, v in DEPLOYMENT.items()})
    for k in ("build_id", "pipeline", "started_at", "runner_class", "log_excerpt"):
        e.pop(k, None)
    e["status"] = DEPLOYMENT["status"]
    for k, v in changes.items():
        if v is DROP:
            e.pop(k, None)
        else:
            e[k] = v
    return e


def req(**changes):
    e = dep(**{k: DROP for k in ("repository", "commit", "environment", "team", "status", "finished_at", "correlation_ids")})
    e.update({k: v for k, v in REQUEST.items() if k not in e})
    e["type"] = "request"
    e["source"] = "jira"
    for k, v in changes.items():
        if v is DROP:
            e.pop(k, None)
        else:
            e[k] = v
    return e


add("a deployment", "accepted", js(dep()))
add("a request", "accepted", js(req()))
add("type null is a build", "accepted", js(ev(type=None)))
add("type of another kind", "invalid_field", js(ev(type="release")))
add("type a number, nothing else", "invalid_field", js({"schema_version": 1, "type": 7}))
add("type in upper case", "invalid_field", js(dep(type="Deployment")))
add("deployment without a commit", "missing_field", js(dep(commit=DROP)))
add("deployment with a null environment", "missing_field", js(dep(environment=None)))
add("deployment status of a build", "invalid_field", js(dep(status="cancelled")))
add("deployment environment blank", "invalid_field", js(dep(environment=" \t ")))
add("deployment environment with a control character", "invalid_field", js(dep(environment="prod\u0000")))
add("deployment correlation_ids not an array", "invalid_field", js(dep(correlation_ids="PAY-1")))
add("deployment correlation_ids of 101", "invalid_field", js(dep(correlation_ids=[f"PAY-{i}" for i in range(101)])))
add("deployment correlation id empty", "invalid_field", js(dep(correlation_ids=[""])))
add("deployment started after it finished", "invalid_timestamp", js(dep(started_at="2026-11-01T11:00:00Z")))
add("deployment older than the retention", "invalid_timestamp", js(dep(finished_at="2001-01-01T00:00:00Z")))
add("deployment in year 9999", "invalid_timestamp", js(dep(finished_at="9999-12-31T23:59:59Z")))
add("request without its id", "missing_field", js(req(correlation_id=DROP)))
add("request id of 257 characters", "invalid_field", js(req(correlation_id="P" * 257)))
add("request older than the retention", "invalid_timestamp", js(req(requested_at="2001-01-01T00:00:00Z")))
add("request asked for in the future", "invalid_timestamp", js(req(requested_at="9999-01-01T00:00:00Z")))
add("change title of 1 KiB and one byte", "invalid_field", js(ev(change_title="x" * 1025)))
add("change title with newlines", "accepted", js(ev(change_title="[PAY-9] fix\n\tthe cart")))

if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
    os.makedirs(sys.argv[2], exist_ok=True)
    for i, e in enumerate(entries):
        if "text" in e:
            data = e["text"].encode()
        elif "hex" in e:
            data = bytes.fromhex(e["hex"])
        else:
            r = e["repeat"]
            data = (r["prefix"] + r["unit"] * r["times"] + r["suffix"]).encode()
        if len(data) < 1 << 20:
            with open(os.path.join(sys.argv[2], f"hostile-{i:03}"), "wb") as f:
                f.write(data)
else:
    print(json.dumps(entries, indent=1, ensure_ascii=False))
