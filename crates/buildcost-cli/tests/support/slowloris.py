"""A slowloris attack on loopback, as the test of issue 20 describes it.

Opens N connections to ADDR that each send half a request header and then nothing, checks that
/healthz still answers on a fresh connection while they are held, and waits until the server has
closed every one of them (or the deadline passes). Prints one JSON object:
{"opened", "closed", "still_open", "seconds_to_open_all", "seconds_to_close_all",
 "max_seconds_open" and "p50_seconds_open" (how long connections stayed open, each from its
 own opening), "healthz",
 "max_open" (the most held at once), "rss_kb_base", "rss_kb_peak", "rss_kb_end" (once all are
 closed)}.
"""
import argparse
import json
import resource
import selectors
import socket
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def healthz(host, port):
    try:
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError as e:
        return f"error: {e}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--deadline", type=float, default=30.0)
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    port = int(port)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, a.connections + 200)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    base = rss_kb(a.pid)
    peak = base
    sel = selectors.DefaultSelector()
    opened = 0
    open_now = 0
    max_open = 0
    lifetimes = []

    def drain(timeout):
        """Notes every connection the server closed (or answered, then closed)."""
        nonlocal open_now
        for key, _ in sel.select(timeout=timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (ConnectionResetError, BlockingIOError, OSError):
                data = b""
            if not data:
                lifetimes.append(time.monotonic() - key.data)
                sel.unregister(s)
                s.close()
                open_now -= 1
            # Anything answered (a 408) is read and the socket waits for the close.

    started = time.monotonic()
    for i in range(a.connections):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow")
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, time.monotonic())
            opened += 1
            open_now += 1
            max_open = max(max_open, open_now)
        except OSError:
            break
        if i % 100 == 0:
            # While opening, closes are noted too: a lifetime is the server's, not ours.
            drain(0)
        if i % 500 == 0:
            peak = max(peak, rss_kb(a.pid))
    peak = max(peak, rss_kb(a.pid))
    opened_all = time.monotonic() - started
    status = healthz(host, port)
    while open_now > 0 and time.monotonic() - started < opened_all + a.deadline + 5:
        drain(0.2)
        peak = max(peak, rss_kb(a.pid))
    closed_at = time.monotonic() - started if open_now == 0 else None
    lifetimes.sort()
    print(json.dumps({
        "opened": opened,
        "closed": opened - open_now,
        "still_open": open_now,
        "seconds_to_open_all": round(opened_all, 2),
        "seconds_to_close_all": closed_at,
        "max_seconds_open": round(lifetimes[-1], 2) if open_now == 0 and lifetimes else None,
        "p50_seconds_open": round(lifetimes[len(lifetimes) // 2], 2) if lifetimes else None,
        "healthz": status,
        "rss_kb_base": base,
        "rss_kb_peak": peak,
        "max_open": max_open,
        "rss_kb_end": rss_kb(a.pid),
    }))


if __name__ == "__main__":
    main()
