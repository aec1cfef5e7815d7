"""Peak and steady-state RSS of a running `buildcost run` (benches/pipeline.sh, step d).

usage: steady.py ADDR OUT.json TIMED_PID BUILDCOST CONFIG TEAMS END SEED

TIMED_PID is GNU time's pid; `buildcost run` is its child and serves /metrics on ADDR. Waits for
three refreshes, produces a trickle of 6,000 new builds of the last day (`buildcost generate
--kafka`, seeded by SEED), waits until they are accepted and eight more refreshes have run, then
samples the RSS after each of ten refreshes. Writes the median, the RSS before the trickle, the
peak (VmHWM), the median refresh duration and the builds accepted to OUT.json.
"""

import json
import statistics
import subprocess
import sys
import time
import urllib.request


def main():
    addr, out, timed, binary, config, teams, end, seed = sys.argv[1:9]

    def status():
        pid = subprocess.run(["pgrep", "-P", timed], capture_output=True, text=True).stdout.split()[0]
        fields = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def metrics():
        text = urllib.request.urlopen(f"http://{addr}/metrics", timeout=30).read().decode()
        v = {}
        for line in text.splitlines():
            if line.startswith(("buildcost_refreshes_total ", "buildcost_refresh_duration_seconds ",
                                "buildcost_events_accepted_total ")):
                name, value = line.split()
                v[name] = float(value)
        return v

    def wait(refreshes, accepted=0):
        deadline = time.time() + 1800
        while time.time() < deadline:
            try:
                v = metrics()
                if (v.get("buildcost_refreshes_total", 0) >= refreshes
                        and v.get("buildcost_events_accepted_total", 0) >= accepted):
                    return v
            except OSError:
                pass
            time.sleep(0.2)
        sys.exit("run did not reach its steady state")

    v = wait(3)
    accepted_before = v.get("buildcost_events_accepted_total", 0)
    rss_before, _ = status()
    subprocess.run([binary, "--config", config, "generate", "--kafka", "--days", "1",
                    "--builds-per-day", "6000", "--teams", teams, "--end", end, "--seed", seed],
                   check=True, capture_output=True)
    v = wait(3)
    base = v["buildcost_refreshes_total"]
    v = wait(base + 8, accepted_before + 6000)
    samples, durations, seen = [], [], base + 8
    for _ in range(10):
        v = wait(seen + 1)
        seen = v["buildcost_refreshes_total"]
        durations.append(v["buildcost_refresh_duration_seconds"])
        samples.append(status()[0])
    _, peak = status()
    json.dump({"steady_rss_mb": statistics.median(samples), "rss_before_trickle_mb": rss_before,
               "peak_rss_mb": peak, "warm_refresh_s": statistics.median(durations),
               "accepted": v["buildcost_events_accepted_total"]}, open(out, "w"))


if __name__ == "__main__":
    main()
