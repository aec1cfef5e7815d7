#!/usr/bin/env python3
"""An independent implementation of the buildcost contract (SPEC.md sections 2-8 and 12), in plain
Python with the standard library only, written from the spec rather than from the Rust code.

It reads the same NDJSON events, configuration and teams file as `buildcost ingest` and
`buildcost metrics --at`, computes every business gauge, and compares them with the Prometheus
text that buildcost printed: every series must match to 1e-6 relative, none missing, none extra.
It also checks the ingest summary (accepted, duplicates, rejections by reason).

    buildcost_reference.py --events E.ndjson --config buildcost.toml --at 2026-11-02T00:00:00Z \
        --metrics metrics.prom [--summary summary.json]

Exit status 0 when everything matches, 1 with a list of differences otherwise.
"""

import argparse
import csv
import json
import math
import os
import re
import statistics
import sys
import tomllib
from datetime import datetime, timedelta, timezone

REASONS = ["too_large", "invalid_json", "unsupported_version", "missing_field", "invalid_field", "invalid_timestamp"]
REQUIRED = ["event_id", "source", "build_id", "pipeline", "repository", "team", "started_at", "finished_at", "status", "runner_class"]
STATUSES = ["success", "failure", "cancelled", "timeout", "error"]
TRIGGERS = ["push", "pull_request", "merge", "schedule", "manual", "api", "retry", "other"]
STAGES = ["checkout", "dependencies", "compile", "lint", "format", "unit_test", "integration_test", "package", "publish", "deploy", "infra", "other"]
CATEGORIES = ["syntax", "compile", "lint", "format", "test", "flaky_test", "dependency", "infra", "unknown"]
WASTE = ["superseded", "avoidable_failure", "flaky", "infra_failure", "timeout", "cancelled", "duplicate"]
STAGE_CATEGORY = {"compile": "compile", "lint": "lint", "format": "format", "unit_test": "test", "integration_test": "test",
                  "dependencies": "dependency", "checkout": "infra", "infra": "infra"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
PRICE_KEYS = ["cpu_cores", "memory_gb", "gpus", "eur_per_cpu_hour", "eur_per_gb_hour", "eur_per_gpu_hour", "eur_per_build"]
DEFAULT_PRICE = {"cpu_cores": 2.0, "memory_gb": 4.0, "gpus": 0.0, "eur_per_cpu_hour": 0.04, "eur_per_gb_hour": 0.005,
                 "eur_per_gpu_hour": 2.5, "eur_per_build": 0.0}


class Reject(Exception):
    def __init__(self, reason):
        self.reason = reason


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_time(s):
    if not RFC3339.match(s):
        raise Reject("invalid_timestamp")
    try:
        t = datetime.fromisoformat(s.replace("z", "Z").replace("t", "T").replace(" ", "T"))
    except ValueError:
        raise Reject("invalid_timestamp")
    return t.astimezone(timezone.utc)


def validate(raw, max_bytes, now, rules):
    if len(raw) > max_bytes:
        raise Reject("too_large")
    try:
        text = raw.decode("utf-8")
        def no_constants(_):
            raise ValueError("not JSON")
        e = json.loads(text, parse_constant=no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Reject("invalid_json")
    if not isinstance(e, dict):
        raise Reject("invalid_json")
    v = e.get("schema_version")
    if not is_number(v) or v != 1:
        raise Reject("unsupported_version")
    kind = e.get("type")
    if kind is not None and not (isinstance(kind, str) and kind in ("build", "deployment", "request")):
        raise Reject("invalid_field")
    if kind == "deployment":
        return validate_deployment(e, now)
    if kind == "request":
        return validate_request(e, now)
    if any(e.get(f) is None for f in REQUIRED):
        raise Reject("missing_field")

    def string(f, limit=256, optional=False):
        x = e.get(f)
        if x is None:
            if optional:
                return None
        if not isinstance(x, str) or x == "":
            raise Reject("invalid_field")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in x):
            raise Reject("invalid_json")
        if limit is not None and len(x) > limit:
            raise Reject("invalid_field")
        return x

    def enum(f, allowed):
        x = string(f, optional=True)
        if x is not None and x not in allowed:
            raise Reject("invalid_field")
        return x

    for f in ["event_id", "source", "build_id", "pipeline", "repository"]:
        string(f)
    for f in ["branch", "commit"]:
        string(f, optional=True)
    enum("trigger", TRIGGERS)
    team = string("team").strip().lower()
    if not team:
        raise Reject("invalid_field")
    product = string("product", optional=True)
    if product is not None:
        product = product.strip().lower()
        if not product:
            raise Reject("invalid_field")
    author = string("author", optional=True)
    if author is not None and not author.strip():
        raise Reject("invalid_field")
    times = {}
    for f in ["queued_at", "started_at", "finished_at"]:
        times[f] = string(f, limit=None, optional=True)
    status = enum("status", STATUSES)
    stage = enum("failure_stage", STAGES)
    category = enum("failure_category", CATEGORIES)
    log = string("log_excerpt", limit=None, optional=True)
    if log is not None and len(log.encode("utf-8")) > 8192:
        raise Reject("invalid_field")
    string("runner_class")
    numbers = {}
    for f, ok in [("cpu_cores", lambda x: x > 0), ("memory_gb", lambda x: x >= 0)]:
        x = e.get(f)
        if x is not None:
            if not is_number(x) or not math.isfinite(x) or not ok(x):
                raise Reject("invalid_field")
            numbers[f] = float(x)
    for f, low in [("gpus", 0), ("attempt", 1)]:
        x = e.get(f)
        if x is not None:
            if not is_number(x) or not math.isfinite(x) or x != int(x) or x < low or x > 2 ** 53:
                raise Reject("invalid_field")
            numbers[f] = int(x)
    sup = e.get("superseded")
    if sup is not None and not isinstance(sup, bool):
        raise Reject("invalid_field")
    correlation_id = string("correlation_id", optional=True)
    title = e.get("change_title")
    if title is not None and (not isinstance(title, str) or title == "" or len(title.encode("utf-8")) > 1024):
        raise Reject("invalid_field")
    labels = e.get("labels")
    if labels is not None and (not isinstance(labels, dict) or not all(isinstance(x, str) for x in labels.values())):
        raise Reject("invalid_field")

    started = parse_time(times["started_at"])
    finished = parse_time(times["finished_at"])
    queued = parse_time(times["queued_at"]) if times["queued_at"] is not None else None
    if finished < started or finished - started > timedelta(days=7) or finished > now + timedelta(hours=1):
        raise Reject("invalid_timestamp")
    if queued is not None and queued > started:
        raise Reject("invalid_timestamp")

    if status == "failure" and category is None:
        category = next((c for c, rx in rules if log is not None and rx.search(log)), None)
        if category is None:
            category = STAGE_CATEGORY.get(stage, "unknown")
    return {
        "event_id": e["event_id"], "repository": e["repository"], "pipeline": e["pipeline"], "commit": e.get("commit"),
        "team": team, "product": product or "unassigned",
        "author": author.strip().lower() if author is not None else None,
        "started": started, "finished": finished, "status": status, "category": category,
        "superseded": bool(sup), "runner_class": e["runner_class"],
        "cpu_cores": numbers.get("cpu_cores"), "memory_gb": numbers.get("memory_gb"), "gpus": numbers.get("gpus"),
        "kind": "build", "correlation_id": correlation_id, "branch": e.get("branch"), "change_title": title,
    }


def name_of(e, f, optional=False):
    """A name or id (SPEC 2): a non-empty string of at most 256 characters."""
    x = e.get(f)
    if x is None and optional:
        return None
    if not isinstance(x, str) or x == "" or len(x) > 256:
        raise Reject("invalid_field")
    return x


def normal(x):
    if x is None:
        return None
    x = x.strip().lower()
    if not x:
        raise Reject("invalid_field")
    return x


def validate_deployment(e, now):
    """SPEC 12: a deployment; its author is ignored."""
    required = ["event_id", "source", "repository", "commit", "environment", "team", "status", "finished_at"]
    if any(e.get(f) is None for f in required):
        raise Reject("missing_field")
    for f in ["event_id", "source", "repository", "commit"]:
        name_of(e, f)
    environment = normal(name_of(e, "environment"))
    team = normal(name_of(e, "team"))
    product = normal(name_of(e, "product", optional=True)) or "unassigned"
    status = e.get("status")
    if status not in ("success", "failure"):
        raise Reject("invalid_field")
    ids = e.get("correlation_ids")
    if ids is None:
        ids = []
    if not isinstance(ids, list) or len(ids) > 100 or not all(isinstance(i, str) and 1 <= len(i) <= 256 for i in ids):
        raise Reject("invalid_field")
    started = e.get("started_at")
    if started is not None and (not isinstance(started, str) or started == ""):
        raise Reject("invalid_field")
    finished_text = e.get("finished_at")
    if not isinstance(finished_text, str) or finished_text == "":
        raise Reject("invalid_field")
    finished = parse_time(finished_text)
    if started is not None and parse_time(started) > finished:
        raise Reject("invalid_timestamp")
    if finished > now + timedelta(hours=1):
        raise Reject("invalid_timestamp")
    return {"kind": "deployment", "event_id": e["event_id"], "repository": e["repository"], "commit": e["commit"],
            "environment": environment, "team": team, "product": product, "status": status,
            "finished": finished, "ids": set(ids)}


def validate_request(e, now):
    """SPEC 12: a request; titles and reporters are ignored."""
    if any(e.get(f) is None for f in ["event_id", "source", "correlation_id", "requested_at"]):
        raise Reject("missing_field")
    for f in ["event_id", "source", "correlation_id"]:
        name_of(e, f)
    normal(name_of(e, "team", optional=True))
    normal(name_of(e, "product", optional=True))
    t = e.get("requested_at")
    if not isinstance(t, str) or t == "":
        raise Reject("invalid_field")
    requested = parse_time(t)
    if requested > now + timedelta(hours=1):
        raise Reject("invalid_timestamp")
    return {"kind": "request", "event_id": e["event_id"], "id": e["correlation_id"], "requested": requested}


def request_ids(build, pattern):
    """SPEC 12: the correlation id plus whole-word matches in the branch and change title."""
    ids = set()
    if build["correlation_id"] is not None:
        ids.add(build["correlation_id"])
    for text in (build["branch"], build["change_title"]):
        if isinstance(text, str):
            ids.update(m.group(0) for m in re.finditer(r"\b(?:" + pattern + r")\b", text))
    return ids


def quantiles(values):
    """p50 = median (even n: mean of the two middle values), p90 = the ceil(0.9 n)-th value."""
    v = sorted(values)
    n = len(v)
    p50 = v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2
    return p50, v[-(-9 * n // 10) - 1]


def summary(put, name, labels, leads):
    """A lead-time summary: p50 and p90, with `_count` and `_sum`."""
    for q, v in zip(("0.5", "0.9"), quantiles(leads)):
        put(name, {**labels, "quantile": q}, v)
    put(name + "_count", labels, len(leads))
    put(name + "_sum", labels, sum(sorted(leads)))


def delivery_series(put, builds, delivery, config, at, info, row):
    """Every gauge of SPEC 12 at `at`."""
    d = config.get("delivery", {})
    production_envs = {p.strip().lower() for p in d.get("production_environments", ["production", "prod"])}
    by_team = d.get("lead_time_by_team", False)
    orphan_days = d.get("orphan_after_days", 90)
    deployments = [x for x in delivery if x["kind"] == "deployment" and x["finished"] < at]
    requests = [x for x in delivery if x["kind"] == "request" and x["requested"] < at]
    before = [b for b in builds if b["finished"] < at]
    production = [x for x in deployments if x["environment"] in production_envs]
    good = sorted((x for x in production if x["status"] == "success"), key=lambda x: (x["finished"], x["event_id"]))
    by_commit = {}
    for b in before:
        if b["commit"] is not None and b["request_ids"]:
            by_commit.setdefault((b["repository"], b["commit"]), []).append(b)
    delivered = {}
    for dep in good:
        ids = set(dep["ids"])
        for b in by_commit.get((dep["repository"], dep["commit"]), []):
            if b["finished"] <= dep["finished"]:
                ids |= b["request_ids"]
        for r in ids:
            delivered.setdefault(r, dep)
    requested = {}
    for r in requests:
        requested[r["id"]] = min(requested.get(r["id"], r["requested"]), r["requested"])
    ci_cost = {}
    for b in before:
        for r in b["request_ids"]:
            ci_cost[r] = ci_cost.get(r, 0.0) + b["cost"]

    def lead(r):
        return max(0.0, (delivered[r]["finished"] - requested[r]).total_seconds())

    products = {x["product"] for x in production if x["finished"] >= at - timedelta(days=28)}
    for wname, days in [("7d", 7), ("28d", 28)]:
        start = at - timedelta(days=days)
        in_w = [x for x in production if x["finished"] >= start]
        done = {r: dep for r, dep in delivered.items() if dep["finished"] >= start}
        for p in products:
            for status in ("success", "failure"):
                put("buildcost_product_deployments", {"product": p, "window": wname, "status": status},
                    sum(1 for x in in_w if x["product"] == p and x["status"] == status))
            mine = [r for r, dep in done.items() if dep["product"] == p]
            put("buildcost_product_requests_delivered", {"product": p, "window": wname}, len(mine))
            put("buildcost_product_delivered_requests_ci_cost_euros", {"product": p, "window": wname},
                sum(ci_cost.get(r, 0.0) for r in mine))
            leads = [lead(r) for r in mine if r in requested]
            if leads:
                summary(put, "buildcost_product_request_lead_time_seconds", {"product": p, "window": wname}, leads)
        if deployments:
            for status in ("success", "failure"):
                put("buildcost_org_deployments", {"window": wname, "status": status},
                    sum(1 for x in in_w if x["status"] == status))
        leads = [lead(r) for r in done if r in requested]
        if leads:
            summary(put, "buildcost_org_request_lead_time_seconds", {"window": wname}, leads)
        if by_team:
            teams = {}
            for r, dep in done.items():
                if r in requested:
                    teams.setdefault((dep["team"], dep["product"]), []).append(lead(r))
            for (t, p), leads in teams.items():
                if t in info and row(t) == (t, info[t]["product"]):
                    summary(put, "buildcost_team_request_lead_time_seconds", {"team": t, "product": p, "window": wname}, leads)
    if not deployments:
        return
    w28 = [b for b in before if b["finished"] >= at - timedelta(days=28)]
    since = at - timedelta(days=orphan_days)
    org_cost = 0.0
    orphans = {}
    for repo in sorted({b["repository"] for b in w28}):
        if any(x["repository"] == repo and x["finished"] >= since for x in good):
            continue
        mine = [b for b in w28 if b["repository"] == repo]
        votes = {}
        for b in mine:
            votes[b["team"]] = votes.get(b["team"], 0) + 1
        team = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        cost = sum(b["cost"] for b in mine)
        org_cost += cost
        if row(team) == (team, info[team]["product"]):
            o = orphans.setdefault((team, info[team]["product"]), [0, 0.0])
            o[0] += 1
            o[1] += cost
    for (t, p), (n, cost) in orphans.items():
        put("buildcost_team_orphan_repositories", {"team": t, "product": p}, n)
        put("buildcost_team_orphan_repository_cost_euros", {"team": t, "product": p}, cost)
    put("buildcost_org_orphan_repository_cost_euros", {}, org_cost)


def rejected_at(raw, now):
    """A rejected event counts in the week of its finished_at when that can be read, else now."""
    try:
        e = json.loads(raw)
        t = (e.get("finished_at") or e.get("requested_at")) if isinstance(e, dict) else None
        when = parse_time(t) if isinstance(t, str) else now
    except (ValueError, Reject, RecursionError):
        when = now
    return when if when <= now else now


def price_of(build, pricing):
    default = dict(DEFAULT_PRICE)
    default.update({k: float(v) for k, v in pricing.get("default", {}).items()})
    classes = pricing.get("runner_classes", {})
    cls = classes.get(build["runner_class"])
    p = dict(default)
    if cls is not None:
        p.update({k: float(v) for k, v in cls.items()})
    cpu = build["cpu_cores"] if build["cpu_cores"] is not None else p["cpu_cores"]
    mem = build["memory_gb"] if build["memory_gb"] is not None else p["memory_gb"]
    gpus = build["gpus"] if build["gpus"] is not None else p["gpus"]
    hours = (build["finished"] - build["started"]).total_seconds() / 3600
    return hours * (cpu * p["eur_per_cpu_hour"] + mem * p["eur_per_gb_hour"] + gpus * p["eur_per_gpu_hour"]) + p["eur_per_build"]


def waste_classes(builds):
    first_success = {}
    for b in sorted(builds, key=lambda b: (b["finished"], b["event_id"])):
        if b["status"] == "success" and b["commit"] is not None:
            key = (b["repository"], b["pipeline"], b["commit"])
            b["dup"] = key in first_success
            first_success.setdefault(key, b["event_id"])
    for b in builds:
        s, c = b["status"], b["category"]
        if s == "cancelled" and b["superseded"]:
            w = "superseded"
        elif s == "failure" and c in ("syntax", "compile", "lint", "format"):
            w = "avoidable_failure"
        elif s == "failure" and c == "flaky_test":
            w = "flaky"
        elif s == "error" or (s == "failure" and c == "infra"):
            w = "infra_failure"
        elif s == "timeout":
            w = "timeout"
        elif s == "cancelled":
            w = "cancelled"
        elif s == "success" and b.get("dup"):
            w = "duplicate"
        else:
            w = "none"
        b["waste"] = w


def compute(builds, config, teams_file, at, delivery=None):
    privacy = config.get("privacy", {})
    baseline = config.get("baseline", {})
    min_size = privacy.get("min_team_size", 5)
    window_days = baseline.get("window_days", 28)
    min_peers = baseline.get("min_peers", 5)
    k = float(baseline.get("k_sigma", 2.0))
    m = {}

    def put(name, labels, value):
        m[(name, frozenset(labels.items()))] = float(value)

    def window(days):
        start = at - timedelta(days=days)
        return [b for b in builds if start <= b["finished"] < at]

    w28, wbase = window(28), window(window_days)
    teams = sorted({b["team"] for b in w28})
    info = {}
    for t in teams:
        votes = {}
        for b in w28:
            if b["team"] == t:
                votes[b["product"]] = votes.get(b["product"], 0) + 1
        derived_product = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        listed = teams_file.get(t)
        if listed:
            info[t] = {"product": listed["product"], "n": listed["developers"], "group": listed["peer_group"] or listed["product"]}
        else:
            n = len({b["author"] for b in wbase if b["team"] == t and b["author"] is not None})
            info[t] = {"product": derived_product, "n": n, "group": derived_product}

    small_sum = {}
    for t, i in info.items():
        if i["n"] < min_size:
            small_sum[i["product"]] = small_sum.get(i["product"], 0) + i["n"]

    def row(t):
        i = info[t]
        if i["n"] >= min_size:
            return (t, i["product"])
        return ("_small_teams", i["product"] if small_sum[i["product"]] >= min_size else "_all")

    rows = {row(t) for t in teams}
    # SPEC amendment: an org-wide small-teams bucket of fewer than min_size developers is shown
    # nowhere (its builds stay in the org totals).
    org_wide = sum(n for n in small_sum.values() if n < min_size)
    if org_wide < min_size:
        rows.discard(("_small_teams", "_all"))
    for wname, days in [("7d", 7), ("28d", 28)]:
        wb = window(days)
        for r in rows:
            mine = [b for b in wb if row(b["team"]) == r]
            lab = {"team": r[0], "product": r[1], "window": wname}
            put("buildcost_team_cost_euros", lab, sum(b["cost"] for b in mine))
            for w in WASTE:
                put("buildcost_team_waste_cost_euros", {**lab, "waste_class": w}, sum(b["cost"] for b in mine if b["waste"] == w))
            for s in STATUSES:
                put("buildcost_team_builds", {**lab, "status": s}, sum(1 for b in mine if b["status"] == s))
        total = sum(b["cost"] for b in wb)
        put("buildcost_org_cost_euros", {"window": wname}, total)
        put("buildcost_org_builds", {"window": wname}, len(wb))
        for w in WASTE:
            put("buildcost_org_waste_cost_euros", {"window": wname, "waste_class": w}, sum(b["cost"] for b in wb if b["waste"] == w))
        avoidable = sum(b["cost"] for b in wb if b["waste"] == "avoidable_failure")
        wasted = sum(b["cost"] for b in wb if b["waste"] != "none")
        put("buildcost_northstar_avoidable_waste_ratio", {"window": wname}, avoidable / total if total > 0 else 0.0)
        put("buildcost_org_waste_ratio", {"window": wname}, wasted / total if total > 0 else 0.0)
    org_devs = sum(i["n"] for i in info.values())
    put("buildcost_org_developers", {}, org_devs)
    if org_devs > 0:
        put("buildcost_builds_per_developer_per_day", {"window": "28d"}, len(w28) / org_devs / 28)

    for t, i in info.items():
        if i["n"] >= min_size:
            put("buildcost_team_developers", {"team": t, "product": i["product"]}, i["n"])
    cost = {t: sum(b["cost"] for b in wbase if b["team"] == t) for t in teams}
    eligible = [t for t in teams if info[t]["n"] >= min_size and cost[t] > 0]
    y = {t: math.log(cost[t] / info[t]["n"]) for t in eligible}
    groups = {}
    for t in eligible:
        groups.setdefault(info[t]["group"], []).append(t)
    for t in eligible:
        g = info[t]["group"]
        members = groups[g] if len(groups[g]) >= min_peers else eligible
        label = g if len(groups[g]) >= min_peers else "_org"
        ys = [y[x] for x in members]
        med = statistics.median(ys)
        mad = statistics.median([abs(v - med) for v in ys])
        s = max(1.4826 * mad, 0.05)
        z = (y[t] - med) / s
        n = info[t]["n"]
        lab = {"team": t, "product": info[t]["product"]}
        put("buildcost_team_cost_per_developer_euros", lab, cost[t] / n)
        put("buildcost_team_expected_cost_euros", {**lab, "bound": "expected"}, n * math.exp(med))
        put("buildcost_team_expected_cost_euros", {**lab, "bound": "lower"}, n * math.exp(med - k * s))
        put("buildcost_team_expected_cost_euros", {**lab, "bound": "upper"}, n * math.exp(med + k * s))
        put("buildcost_team_deviation_zscore", {**lab, "peer_group": label}, z)
        put("buildcost_team_baseline_status", lab, 1 if z > k else (-1 if z < -k else 0))
    if delivery is not None:
        delivery_series(put, builds, delivery, config, at, info, row)
    return m


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        mt = LINE.match(line)
        if not mt:
            raise SystemExit(f"unparseable metrics line: {line}")
        labels = dict(LABEL.findall(mt.group(3) or ""))
        out[(mt.group(1), frozenset(labels.items()))] = float(mt.group(4))
    return out


# The series a weekly report's figures stand for: its week is the 7d window ending at the
# week's end, its bands the baseline at that instant.
REPORT_SERIES = {"buildcost_team_developers", "buildcost_team_cost_per_developer_euros",
                 "buildcost_team_expected_cost_euros", "buildcost_team_deviation_zscore",
                 "buildcost_team_baseline_status", "buildcost_org_developers"}


def in_report(key):
    name, labels = key
    return dict(labels).get("window") == "7d" or name in REPORT_SERIES


def team_week_series(put, team, product, f):
    lab = {"team": team, "product": product, "window": "7d"}
    put("buildcost_team_cost_euros", lab, f["cost_eur"])
    for w in f["waste"]:
        put("buildcost_team_waste_cost_euros", {**lab, "waste_class": w["waste_class"]}, w["cost_eur"])
    for st, n in f["builds_by_status"].items():
        put("buildcost_team_builds", {**lab, "status": st}, n)
    tp = {"team": team, "product": product}
    if f.get("developers") is not None:
        put("buildcost_team_developers", tp, f["developers"])
    b = f.get("baseline")
    if b:
        put("buildcost_team_cost_per_developer_euros", tp, b["cost_per_developer_eur"])
        for bound in ("expected", "lower", "upper"):
            put("buildcost_team_expected_cost_euros", {**tp, "bound": bound}, b[f"{bound}_eur"])
        put("buildcost_team_deviation_zscore", {**tp, "peer_group": b["peer_group"]}, b["zscore"])
        put("buildcost_team_baseline_status", tp, {"above": 1, "below": -1}.get(b["status"], 0))


def org_week_series(put, o):
    put("buildcost_org_cost_euros", {"window": "7d"}, o["cost_eur"])
    put("buildcost_org_builds", {"window": "7d"}, o["builds"])
    for w in o["waste"]:
        put("buildcost_org_waste_cost_euros", {"window": "7d", "waste_class": w["waste_class"]}, w["cost_eur"])
    put("buildcost_northstar_avoidable_waste_ratio", {"window": "7d"}, o["avoidable_share"])
    put("buildcost_org_waste_ratio", {"window": "7d"}, o["waste_ratio"])
    put("buildcost_org_developers", {}, o["developers"])


def compare(expected, got, what):
    problems = []
    for key in sorted(set(expected) - set(got), key=str):
        problems.append(f"{what}: missing {key[0]}{dict(key[1])} (expected {expected[key]})")
    for key in sorted(set(got) - set(expected), key=str):
        problems.append(f"{what}: extra {key[0]}{dict(key[1])} = {got[key]}")
    for key in set(expected) & set(got):
        e, g = expected[key], got[key]
        if not math.isclose(e, g, rel_tol=1e-6, abs_tol=1e-9):
            problems.append(f"{what}: differs {key[0]}{dict(key[1])} expected {e!r} got {g!r}")
    return problems


def check_report(folder, builds, config, teams_file, rejected, pricing):
    """The weekly report in `folder` (JSON) against figures computed here, week by week."""
    summary = json.load(open(os.path.join(folder, "summary.json")))
    problems = []
    checked = 0
    for o in summary["weeks"]:
        end = datetime.fromisoformat(o["end"].replace("Z", "+00:00"))
        start = end - timedelta(days=7)
        expected = {k: v for k, v in compute(builds, config, teams_file, end).items() if in_report(k)}
        got = {}

        def put(name, labels, value):
            got[(name, frozenset(labels.items()))] = float(value)

        org_week_series(put, o)
        if o["week"] == summary["week"]:
            for row in summary["teams"]:
                team_week_series(put, row["team"], row["product"], row)
            problems += compare(expected, got, f"summary {o['week']}")
            # Data quality: rejections dated in the week, unpriced builds.
            by_reason = {r: 0 for r in REASONS}
            for reason, when in rejected:
                if start <= when < end:
                    by_reason[reason] += 1
            got_reasons = {r: n for r, n in summary["data_quality"]["rejected_by_reason"].items()}
            if got_reasons != by_reason:
                problems.append(f"rejected by reason: expected {by_reason} got {got_reasons}")
            classes = set(pricing.get("runner_classes", {}))
            unpriced = sum(1 for b in builds if start <= b["finished"] < end and b["runner_class"] not in classes)
            if summary["data_quality"]["unpriced_builds"] != unpriced:
                problems.append(f"unpriced builds: expected {unpriced} got {summary['data_quality']['unpriced_builds']}")
        else:
            org_only = {k: v for k, v in expected.items() if k[0].startswith(("buildcost_org_", "buildcost_northstar_"))}
            problems += compare(org_only, got, f"summary {o['week']}")
        checked += len(got)
        # Every team report's week: its own rows only.
        for name in os.listdir(folder):
            if not name.endswith(".json") or name == "summary.json":
                continue
            team = json.load(open(os.path.join(folder, name)))
            mine = [w for w in team["weeks"] if w["week"] == o["week"]]
            got_team = {}

            def put_team(name, labels, value):
                got_team[(name, frozenset(labels.items()))] = float(value)

            for w in mine:
                team_week_series(put_team, team["team"], team["product"], w)
            want = {k: v for k, v in expected.items() if k[0].startswith("buildcost_team_")
                    and dict(k[1]).get("team") == team["team"]
                    and (team["team"] != "_small_teams" or dict(k[1]).get("product") == team["product"])}
            problems += compare(want, got_team, f"{name} {o['week']}")
            checked += len(got_team)
    return problems, checked


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--at", required=True)
    ap.add_argument("--metrics")
    ap.add_argument("--summary")
    ap.add_argument("--report", help="a folder of `buildcost report weekly --format json` output to check")
    a = ap.parse_args()

    with open(a.config, "rb") as f:
        config = tomllib.load(f)
    base = os.path.dirname(os.path.abspath(a.config))
    teams_file = {}
    tf = config.get("teams", {}).get("file")
    if tf:
        with open(os.path.join(base, tf), newline="") as f:
            for r in csv.DictReader(f):
                teams_file[r["team"].strip().lower()] = {
                    "product": r["product"].strip().lower(), "developers": int(r["developers"]),
                    "peer_group": (r.get("peer_group") or "").strip().lower() or None}
    rules_path = config.get("classifier", {}).get("rules_file")
    rules_text = open(os.path.join(base, rules_path)).read() if rules_path else open(
        os.path.join(os.path.dirname(__file__), "..", "..", "..", "buildcost-model", "rules", "default.toml")).read()
    rules = [(r["category"], re.compile(r["pattern"])) for r in tomllib.loads(rules_text)["rule"]]
    max_bytes = config.get("ingest", {}).get("max_event_bytes", 65536)
    now = datetime.now(timezone.utc)

    counts = {"accepted": 0, "duplicates": 0, **{r: 0 for r in REASONS}}
    seen, builds, rejected, delivery = set(), [], [], []
    with open(a.events, "rb") as f:
        for raw in f:
            raw = raw.rstrip(b"\r\n")
            if not raw.strip():
                continue
            try:
                b = validate(raw, max_bytes, now, rules)
            except Reject as r:
                counts[r.reason] += 1
                rejected.append((r.reason, rejected_at(raw, now)))
                continue
            if b["event_id"] in seen:
                counts["duplicates"] += 1
                continue
            seen.add(b["event_id"])
            counts["accepted"] += 1
            (builds if b["kind"] == "build" else delivery).append(b)
    pricing = config.get("pricing", {})
    for b in builds:
        b["cost"] = price_of(b, pricing)
    waste_classes(builds)
    pattern = config.get("delivery", {}).get("request_id_pattern", "[A-Z][A-Z0-9]+-[0-9]+")
    for b in builds:
        b["request_ids"] = request_ids(b, pattern)
    at = datetime.fromisoformat(a.at.replace("Z", "+00:00")).astimezone(timezone.utc)
    expected = compute(builds, config, teams_file, at, delivery)
    problems = []
    got = {}
    if a.metrics:
        got = parse_prometheus(open(a.metrics).read())
        problems += compare(expected, got, "metrics")
    if a.report:
        found, checked = check_report(a.report, builds, config, teams_file, rejected, pricing)
        problems += found
        print(json.dumps({"report_figures_checked": checked}))
    if a.summary:
        summary = json.loads(open(a.summary).read().strip().splitlines()[-1])
        if summary["accepted"] != counts["accepted"] or summary["duplicates"] != counts["duplicates"]:
            problems.append(f"summary: expected accepted={counts['accepted']} duplicates={counts['duplicates']}, got {summary}")
        for r in REASONS:
            if summary["rejected_by_reason"].get(r) != counts[r]:
                problems.append(f"summary: {r} expected {counts[r]} got {summary['rejected_by_reason'].get(r)}")
    print(json.dumps({"series_expected": len(expected), "series_got": len(got), "problems": len(problems), **counts}))
    for p in problems[:50]:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
