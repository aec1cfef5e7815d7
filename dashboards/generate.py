#!/usr/bin/env python3
"""Writes the Grafana dashboards of buildcost (dashboards/*.json) from the definitions below.

Edit this file, then run `python3 dashboards/generate.py`; `--check` fails when the JSON files
differ from what it would write (the test suite runs it). Every panel has a description, a unit
and, where a level means something, thresholds. Queries use the `datasource` variable: no
hard-coded data-source uid, so the dashboards import into any Grafana with a Prometheus.
"""

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}


def thresholds(*steps):
    """steps: (value, colour) with the first value None."""
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in steps]}


def panel(kind, title, description, targets, x, y, w, h, unit=None, decimals=None,
          steps=None, options=None, overrides=None, min_=None, max_=None):
    defaults = {}
    if unit:
        defaults["unit"] = unit
    if decimals is not None:
        defaults["decimals"] = decimals
    if steps:
        defaults["thresholds"] = thresholds(*steps)
        defaults["color"] = {"mode": "thresholds"}
    if min_ is not None:
        defaults["min"] = min_
    if max_ is not None:
        defaults["max"] = max_
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "datasource": DS,
                "expr": expr,
                "legendFormat": legend,
                "instant": kind in ("stat", "table", "bargauge", "gauge"),
                "range": kind == "timeseries",
                **({"format": "table"} if kind == "table" else {}),
            }
            for i, (expr, legend) in enumerate(targets)
        ],
        "fieldConfig": {"defaults": defaults, "overrides": overrides or []},
        "options": options or {},
    }


def text(title, content, x, y, w, h):
    return {
        "type": "text",
        "title": title,
        "description": "How to read this dashboard.",
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "options": {"mode": "markdown", "content": content},
    }


def datasource_var():
    return {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }


def query_var(name, label, query):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": name},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
    }


def dashboard(uid, title, description, panels, variables, tags):
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["buildcost", *tags],
        "timezone": "utc",
        "editable": True,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-30d", "to": "now"},
        "templating": {"list": [datasource_var(), *variables]},
        "annotations": {"list": []},
        "panels": [dict(p, id=i + 1) for i, p in enumerate(panels)],
    }


EUR = "currencyEUR"
PCT = "percentunit"

finops = dashboard(
    "buildcost-finops",
    "buildcost — FinOps overview",
    "What CI costs the organisation, how much of it is waste, and which teams spend far outside the range of teams their size.",
    [
        text("How to read this", (
            "Costs are **euros** over rolling windows ending now (7 or 28 days). The **northstar** is the share "
            "of CI cost spent on builds that failed on syntax, compile, lint or format — failures a local "
            "editor or pre-commit hook would have caught. Teams are compared only with teams of their size "
            "(cost per developer against their peer group's band); teams below the privacy minimum appear only "
            "merged as `_small_teams`. Nothing here is about a person."), 0, 0, 24, 3),
        panel("stat", "Org CI cost, last 7 days", "Total CI cost of every build finished in the last 7 days, in euros.",
              [('buildcost_org_cost_euros{window="7d"}', "7 days")], 0, 3, 4, 4, EUR, 0),
        panel("stat", "Org CI cost, last 28 days", "Total CI cost of every build finished in the last 28 days, in euros.",
              [('buildcost_org_cost_euros{window="28d"}', "28 days")], 4, 3, 4, 4, EUR, 0),
        panel("stat", "Northstar: avoidable-failure share, 28 days",
              "Share of CI cost spent on builds failing on syntax, compile, lint or format errors (28 days). Lower is better; above 10 % (amber) or 20 % (red) a pre-commit hook pays for itself quickly.",
              [('buildcost_northstar_avoidable_waste_ratio{window="28d"}', "northstar")], 8, 3, 4, 4, PCT, 1,
              [(None, "green"), (0.10, "orange"), (0.20, "red")]),
        panel("stat", "Northstar change, week over week",
              "The northstar over the last 7 days minus the same figure a week earlier, in percentage points. Positive (red) means more money lost to avoidable failures than last week.",
              [("buildcost:northstar_avoidable_waste_ratio:wow_change", "change")], 12, 3, 4, 4, PCT, 1,
              [(None, "green"), (0.005, "orange"), (0.02, "red")]),
        panel("stat", "Savings potential per year",
              "Euros a year saved if avoidable-failure waste were halved, at the last 28 days' rate (avoidable waste × ½ × 365/28).",
              [("buildcost:savings_potential_euros:per_year", "per year")], 16, 3, 4, 4, EUR, 0),
        panel("stat", "Builds per developer per day",
              "Builds per developer per day over 28 days, developers counted from team sizes. A sudden rise often means retries or pipelines triggered twice.",
              [('buildcost_builds_per_developer_per_day{window="28d"}', "builds/dev/day")], 20, 3, 4, 4, "short", 2),
        panel("timeseries", "Org cost trend (rolling 7 days)",
              "The rolling 7-day CI cost over time, in euros: the trend of spend, smoothing weekends.",
              [('buildcost_org_cost_euros{window="7d"}', "cost, 7 days")], 0, 7, 12, 8, EUR, 0),
        panel("timeseries", "Northstar trend (rolling 7 days)",
              "The share of CI cost lost to avoidable failures over the last 7 days, over time. Falling means developer tooling works.",
              [('buildcost_northstar_avoidable_waste_ratio{window="7d"}', "northstar, 7 days"),
               ('buildcost_org_waste_ratio{window="7d"}', "all waste, 7 days")], 12, 7, 12, 8, PCT, 1, min_=0),
        panel("bargauge", "Waste by class, 28 days",
              "CI cost of wasted builds by waste class over 28 days, in euros. Superseded, avoidable failures, cancelled and duplicate builds are developer-owned; flaky, infrastructure failures and timeouts are platform-owned.",
              [('sort_desc(buildcost_org_waste_cost_euros{window="28d"})', "{{waste_class}}")], 0, 15, 12, 9, EUR, 0,
              options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}),
        panel("piechart", "Waste by owner, 28 days",
              "Waste split by who can act on it: developers (editor, hooks, habits) or the platform team (runners, flaky infrastructure, timeouts), in euros over 28 days.",
              [('buildcost:org_waste_cost_euros:by_owner{window="28d"}', "{{owner}}")], 12, 15, 12, 9, EUR, 0,
              options={"legend": {"displayMode": "table", "placement": "right", "values": ["value", "percent"]},
                       "pieType": "donut", "reduceOptions": {"calcs": ["lastNotNull"]}}),
        panel("table", "Teams above their band (by euros over the upper bound)",
              "Teams whose 28-day cost per developer is above the upper bound of their peer group's band, sorted by the euros above that bound. A conversation starter with the team, never about a person.",
              [("sort_desc(buildcost:team_excess_euros:28d)", "")], 0, 24, 24, 9, EUR, 0,
              options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
              overrides=[{"matcher": {"id": "byName", "options": "Time"},
                          "properties": [{"id": "custom.hidden", "value": True}]}]),
        text("Delivery: from request to production", (
            "A **request** (a ticket such as `PAY-123`) is delivered by its first successful production deployment; "
            "its **lead time** runs from the request to that deployment, its **CI cost** is every build that "
            "carried its id. An **orphan repository** has builds in the last 28 days and no successful production "
            "deployment in `delivery.orphan_after_days`: CI spent on code that ships nothing. Products, not "
            "people; team lead times only when `delivery.lead_time_by_team` is on."), 0, 33, 24, 3),
        panel("stat", "Lead time p50, 28 days",
              "Median time from request to first production delivery, over the requests delivered in the last 28 days.",
              [('buildcost_org_request_lead_time_seconds{window="28d",quantile="0.5"}', "p50")], 0, 36, 4, 4, "s", 0),
        panel("stat", "Lead time p90, 28 days",
              "Nine in ten requests delivered in the last 28 days took at most this long from request to production.",
              [('buildcost_org_request_lead_time_seconds{window="28d",quantile="0.9"}', "p90")], 4, 36, 4, 4, "s", 0),
        panel("stat", "Orphan repositories' CI cost, 28 days",
              "CI cost of the last 28 days' builds of repositories that reached no production deployment in the configured days: keep, update or delete them?",
              [("buildcost_org_orphan_repository_cost_euros", "orphan cost")], 8, 36, 4, 4, EUR, 0,
              [(None, "green"), (1000, "orange")]),
        panel("stat", "Production deployments, 7 days",
              "Production deployments of the last 7 days that succeeded, and that failed.",
              [('buildcost_org_deployments{window="7d",status="success"}', "succeeded"),
               ('buildcost_org_deployments{window="7d",status="failure"}', "failed")], 12, 36, 6, 4, "short", 0),
        panel("stat", "CI cost per delivered request, 28 days",
              "The CI cost of the builds of the requests delivered in the last 28 days, divided by those requests.",
              [('sum(buildcost_product_delivered_requests_ci_cost_euros{window="28d"}) / clamp_min(sum(buildcost_product_requests_delivered{window="28d"}), 1)', "per request")],
              18, 36, 6, 4, EUR, 2),
        panel("bargauge", "Requests delivered by product, 28 days",
              "Requests first delivered to production in the last 28 days, by the product of the deployment that delivered them.",
              [('sort_desc(buildcost_product_requests_delivered{window="28d"})', "{{product}}")], 0, 40, 12, 8, "short", 0,
              options={"orientation": "horizontal", "displayMode": "gradient"}),
        panel("timeseries", "Lead time by product (p50, 28 days)",
              "The median lead time of each product's requests delivered in the last 28 days, over time.",
              [('buildcost_product_request_lead_time_seconds{window="28d",quantile="0.5"}', "{{product}}")], 12, 40, 12, 8, "s", 0, min_=0),
        panel("table", "Teams with orphan repositories (CI cost, 28 days)",
              "Teams whose repositories have builds but no production deployment, with what those builds cost over 28 days. Teams below the privacy minimum count in the org figure only.",
              [("sort_desc(buildcost_team_orphan_repository_cost_euros)", "")], 0, 48, 24, 8, EUR, 0,
              options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
              overrides=[{"matcher": {"id": "byName", "options": "Time"},
                          "properties": [{"id": "custom.hidden", "value": True}]}]),
    ],
    [],
    ["finops"],
)

TEAM = 'team="$team",product="$product"'
team = dashboard(
    "buildcost-team",
    "buildcost — Team",
    "One team's CI cost against teams of its size, its waste and its builds. Pick the product, then the team.",
    [
        text("How to read this", (
            "**Cost per developer** is compared with the team's peer group (same product, or an explicit peer "
            "group); the band is the peer median ± k·σ (robust). `_small_teams` is the merged row of every team "
            "below the privacy minimum: it shows cost, waste and builds only, never a band or a z-score."),
            0, 0, 24, 3),
        panel("timeseries", "Cost against the expected band (28 days)",
              "The team's 28-day CI cost (line) against what a team of its size is expected to cost: the peer-group median (expected) and the band's lower and upper bounds, in euros.",
              [(f'buildcost_team_cost_euros{{{TEAM},window="28d"}}', "cost"),
               (f'buildcost_team_expected_cost_euros{{{TEAM}}}', "{{bound}}")], 0, 3, 16, 9, EUR, 0),
        panel("stat", "Cost per developer, 28 days",
              "The team's 28-day CI cost divided by its developers, in euros.",
              [(f"buildcost_team_cost_per_developer_euros{{{TEAM}}}", "per developer")], 16, 3, 4, 4, EUR, 2),
        panel("stat", "Deviation (robust z-score)",
              "How far the team's log cost per developer is from its peer group's median, in robust standard deviations. Beyond ±2 (red) the team is outside its band.",
              [(f"buildcost_team_deviation_zscore{{{TEAM}}}", "{{peer_group}}")], 20, 3, 4, 4, "short", 2,
              [(None, "green"), (1.5, "orange"), (2, "red")]),
        panel("stat", "Against its band",
              "-1 below the band, 0 within, 1 above (28 days).",
              [(f"buildcost_team_baseline_status{{{TEAM}}}", "status")], 16, 7, 4, 5, "short", 0,
              [(None, "blue"), (0, "green"), (1, "red")],
              options={"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"}),
        panel("stat", "Developers",
              "Developers in the team (teams file, else distinct builders over 28 days). Not shown for _small_teams.",
              [(f"buildcost_team_developers{{{TEAM}}}", "developers")], 20, 7, 4, 5, "short", 0),
        panel("bargauge", "Waste by class, 28 days",
              "The team's cost of wasted builds by waste class over 28 days, in euros.",
              [(f'sort_desc(buildcost_team_waste_cost_euros{{{TEAM},window="28d"}})', "{{waste_class}}")],
              0, 12, 12, 8, EUR, 0, options={"orientation": "horizontal", "displayMode": "gradient"}),
        panel("bargauge", "Builds by status, 28 days",
              "The team's builds by outcome over 28 days.",
              [(f'buildcost_team_builds{{{TEAM},window="28d"}}', "{{status}}")], 12, 12, 12, 8, "short", 0,
              options={"orientation": "horizontal", "displayMode": "basic"}),
        panel("timeseries", "Cost trend (rolling 7 days)",
              "The team's rolling 7-day CI cost, in euros, over time.",
              [(f'buildcost_team_cost_euros{{{TEAM},window="7d"}}', "cost, 7 days")], 0, 20, 24, 8, EUR, 0),
        panel("stat", "Orphan repositories",
              "The team's repositories with builds in the last 28 days and no successful production deployment in delivery.orphan_after_days (0 when none).",
              [(f"buildcost_team_orphan_repositories{{{TEAM}}} or on() vector(0)", "repositories")], 0, 28, 12, 4, "short", 0,
              [(None, "green"), (1, "orange")]),
        panel("stat", "Their CI cost, 28 days",
              "What the builds of the team's orphan repositories cost over the last 28 days, in euros (0 when none).",
              [(f"buildcost_team_orphan_repository_cost_euros{{{TEAM}}} or on() vector(0)", "orphan cost")], 12, 28, 12, 4, EUR, 0),
    ],
    [
        query_var("product", "Product", "label_values(buildcost_team_cost_euros, product)"),
        query_var("team", "Team", 'label_values(buildcost_team_cost_euros{product="$product"}, team)'),
    ],
    ["team"],
)

health = dashboard(
    "buildcost-pipeline",
    "buildcost — Pipeline health",
    "Is buildcost counting every build? Ingest rate, rejections, dead letters, duplicates, consumer lag, refreshes.",
    [
        panel("timeseries", "Events accepted per second",
              "Build events decoded and stored per second, all ingesters.",
              [("buildcost:events_accepted:rate5m", "accepted/s")], 0, 0, 12, 8, "ops", 1, min_=0),
        panel("timeseries", "Events rejected per second, by reason",
              "Events that failed validation, by reason (each is in the dead-letter topic with its reason and detail). A new reason appearing usually means a CI system changed its payload.",
              [("buildcost:events_rejected:rate5m", "{{reason}}")], 12, 0, 12, 8, "ops", 2, min_=0),
        panel("stat", "Dead letters, last hour",
              "Rejected events acknowledged by the dead-letter topic in the last hour.",
              [("sum(increase(buildcost_dead_letters_total[1h]))", "dead letters")], 0, 8, 6, 4, "short", 0,
              [(None, "green"), (1, "orange")]),
        panel("stat", "Duplicates, last hour",
              "Events whose event_id was already stored (re-sent or replayed) in the last hour; they are not counted twice.",
              [("sum(increase(buildcost_events_duplicate_total[1h]))", "duplicates")], 6, 8, 6, 4, "short", 0),
        panel("stat", "Unpriced builds, last hour",
              "Builds on a runner class missing from the price table in the last hour (priced at the default). Add the class to [pricing.runner_classes].",
              [("sum(increase(buildcost_builds_unpriced_total[1h]))", "unpriced")], 12, 8, 6, 4, "short", 0,
              [(None, "green"), (1, "orange")]),
        panel("stat", "Figures age",
              "Time since the last successful refresh of the business gauges. Above 15 minutes (red) the dashboards show stale figures.",
              [("time() - max(buildcost_refresh_last_success_timestamp_seconds)", "age")], 18, 8, 6, 4, "s", 0,
              [(None, "green"), (300, "orange"), (900, "red")]),
        panel("timeseries", "Consumer lag by partition",
              "Messages waiting between the committed offset and the end of each partition. Growing lag means the ingesters fall behind.",
              [("sum by (partition) (buildcost_consumer_lag_messages)", "partition {{partition}}")], 0, 12, 12, 8, "short", 0, min_=0),
        panel("timeseries", "Refresh duration",
              "How long the last refresh of the business gauges took, in seconds. It should stay well below refresh.interval.",
              [("max(buildcost_refresh_duration_seconds)", "refresh")], 12, 12, 12, 8, "s", 2, min_=0),
        panel("timeseries", "Files and rows written per second",
              "Parquet files and rows made durable per second (offsets are committed only after).",
              [("sum(rate(buildcost_files_written_total[5m]))", "files/s"),
               ("sum(rate(buildcost_rows_written_total[5m]))", "rows/s")], 0, 20, 12, 8, "ops", 2, min_=0),
        panel("timeseries", "Consumer errors and failed commits per second",
              "Errors the Kafka consumer reported and offset commits that failed, per second; both are retried, sustained values mean broker trouble.",
              [("sum(rate(buildcost_consumer_errors_total[5m]))", "consumer errors/s"),
               ("sum(rate(buildcost_commit_failures_total[5m]))", "failed commits/s")], 12, 20, 12, 8, "ops", 2, min_=0),
    ],
    [],
    ["operations"],
)

DASHBOARDS = {"finops-overview.json": finops, "team.json": team, "pipeline-health.json": health}


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for name, board in DASHBOARDS.items():
        text_ = json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        path = HERE / name
        if check:
            if not path.exists() or path.read_text() != text_:
                stale.append(name)
        else:
            path.write_text(text_)
    if stale:
        sys.exit(f"out of date (run python3 dashboards/generate.py): {', '.join(stale)}")


if __name__ == "__main__":
    main()
