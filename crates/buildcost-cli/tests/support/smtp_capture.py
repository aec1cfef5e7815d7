"""A capturing SMTP server (aiosmtpd) for the delivery tests.

Listens on 127.0.0.1 (a free port), prints `listening PORT` when ready, and saves every message
it accepts as DIR/<n>.eml. With --fail-first N, the first N messages get a transient
`451 4.3.0` (the sender must retry); with --cert/--key it offers STARTTLS.
"""
import argparse
import asyncio
import itertools
import os
import socket
import ssl
import sys

from aiosmtpd.controller import Controller


class Capture:
    def __init__(self, out, fail_first):
        self.out = out
        self.fail_left = fail_first
        self.seq = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 Try again later"
        n = next(self.seq)
        path = os.path.join(self.out, f"{n}.eml")
        with open(path + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(path + ".tmp", path)
        with open(os.path.join(self.out, f"{n}.rcpt"), "w") as f:
            f.write("\n".join(envelope.rcpt_tos))
        return "250 OK"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    context = None
    if a.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
    port = free_port()
    controller = Controller(
        Capture(a.out, a.fail_first),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=context is not None,
    )
    controller.start()
    print(f"listening {port}", flush=True)
    try:
        sys.stdin.read()  # until the test closes our stdin
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
