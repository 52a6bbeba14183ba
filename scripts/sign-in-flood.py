#!/usr/bin/env python3
"""Sends N sign-in attempts at once to a running `rappel serve`, each from its own loopback
address (127.0.x.y, so the per-address limit does not hide the global one and the hash slots),
and prints how they were answered and the server's peak memory (VmHWM) before and after.

    python3 scripts/sign-in-flood.py --port 8080 --pid "$(pgrep -n rappel)" --attempts 300

Standard library only. Linux only (any 127.0.0.0/8 address is local there).
"""

import argparse
import collections
import socket
import threading


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def attempt(index, port, statuses, barrier):
    source = f"127.0.{2 + index // 250}.{1 + index % 250}"
    # A different unknown address each time, so that no address lock answers before the hash.
    body = b"email=nobody-%d%%40flood.test&password=wrong-password" % index
    request = (
        b"POST /connexion HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
        % (port, len(body))
    ) + body
    try:
        sock = socket.socket()
        sock.bind((source, 0))
        sock.settimeout(120)
        sock.connect(("127.0.0.1", port))
        barrier.wait()
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        sock.close()
        statuses.append(int(answer.split(b" ", 2)[1]))
    except Exception as error:  # noqa: BLE001 - a measurement tool counts every failure
        statuses.append(f"error: {type(error).__name__}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--attempts", type=int, default=300)
    args = parser.parse_args()
    before = peak_rss_kib(args.pid)
    statuses = []
    barrier = threading.Barrier(args.attempts)
    threads = [
        threading.Thread(target=attempt, args=(i, args.port, statuses, barrier))
        for i in range(args.attempts)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = peak_rss_kib(args.pid)
    print(f"answers: {dict(sorted(collections.Counter(map(str, statuses)).items()))}")
    print(f"peak RSS (VmHWM): before {before / 1024:.1f} MiB, after {after / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
