"""A local receiver for Teams Workflows and Slack webhooks, for the delivery tests.

Listens on 127.0.0.1 (a free port) and prints `listening PORT`. Every POST is saved as
DIR/<n>-<answer>.json with its path. The path says how to answer:
  /ok/...          202 (as Teams Workflows answer) or `ok` with 200 for /ok/slack/...
  /flaky/N/...     the first N requests to this path get 503, then 429 (Retry-After: 1)
                   alternately; then as /ok/
  /bad/...         400 every time (a permanent error)
"""
import argparse
import http.server
import json
import os
import sys
import threading

COUNTS = {}
LOCK = threading.Lock()
SEQ = [0]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        parts = self.path.strip("/").split("/")
        with LOCK:
            COUNTS[self.path] = COUNTS.get(self.path, 0) + 1
            seen = COUNTS[self.path]
            SEQ[0] += 1
            n = SEQ[0]
        status, text, headers = 202, b"", {}
        if parts[0] == "bad":
            status, text = 400, b"Bad payload: the flow is misconfigured"
        elif parts[0] == "flaky" and seen <= int(parts[1]):
            if seen % 2 == 1:
                status, text = 503, b"Service Unavailable"
            else:
                status, text, headers = 429, b"Too Many Requests", {"Retry-After": "1"}
        elif "slack" in parts:
            status, text = 200, b"ok"
        record = {
            "path": self.path,
            "status": status,
            "content_type": self.headers.get("Content-Type"),
            "body": body.decode("utf-8", errors="replace"),
        }
        path = os.path.join(OUT, f"{n:04d}-{status}.json")
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        self.wfile.write(text)


def main():
    global OUT
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    a = p.parse_args()
    OUT = a.out
    os.makedirs(OUT, exist_ok=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
