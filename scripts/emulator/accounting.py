"""Request accounting: which AWS actions each account asked for, and how long the
emulator took to serve them.

Tests assert on what the provider asked AWS to do (for example: a plan that fails
validation makes no mutating call). Every request is counted under its account and
``<service>:<Action>`` key (see ``core.classify``), throttled ones included.

Benchmarks subtract the emulator's own latency from what they measure, so the time
spent serving each request (from receiving it to its complete response, the socket
write aside) is summed per account and key too, and so is the account's busy time:
the wall-clock time during which at least one of its requests was being served
(concurrent requests overlap, so this is at most the sum of the seconds).

    GET  /_immutable/requests?account=ID        -> {"ec2:DescribeImages": 3, ...}
    POST /_immutable/requests/reset?account=ID  -> the counts before the reset
    either with &timing=1                       -> {"counts": {...},
                                                    "seconds": {"ec2:DescribeImages": 0.012, ...},
                                                    "busy_seconds": 0.011}
"""

from __future__ import annotations

import threading
from time import perf_counter
from typing import Iterable

from . import core

PREFIX = "/_immutable/requests"


class AccountUsage:
    """One account's requests: counts and serving seconds by key, and busy time."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.busy_seconds = 0.0
        self.in_flight = 0
        self.busy_since = 0.0

    def begin(self, key: str, now: float) -> None:
        self.counts[key] = self.counts.get(key, 0) + 1
        if self.in_flight == 0:
            self.busy_since = now
        self.in_flight += 1

    def end(self, key: str, started: float, now: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + (now - started)
        self.in_flight -= 1
        if self.in_flight == 0:
            self.busy_seconds += now - self.busy_since

    def timing(self, now: float) -> dict[str, object]:
        busy = self.busy_seconds + (now - self.busy_since if self.in_flight else 0.0)
        return {"counts": dict(self.counts), "seconds": dict(self.seconds), "busy_seconds": busy}


LOCK = threading.Lock()
USAGE: dict[str, AccountUsage] = {}


def count(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    started = perf_counter()
    with LOCK:
        usage = USAGE.setdefault(account, AccountUsage())
        usage.begin(key, started)
    try:
        # Moto computes whole responses; collecting the body here times that work
        # without the socket write, and records it before the client has the answer.
        response = following(environ, start_response)
        try:
            return list(response)
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
    finally:
        with LOCK:
            # After a reset the figures land on the forgotten usage, as intended.
            usage.end(key, started, perf_counter())


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    params = core.query(environ)
    account = params.get("account", "")
    timing = params.get("timing", "0") not in ("", "0")

    def figures(usage: AccountUsage | None) -> object:
        usage = usage or AccountUsage()
        return usage.timing(perf_counter()) if timing else dict(usage.counts)

    if not account:
        return core.answer(start_response, "400 Bad Request", {"error": "the account query parameter is required"})
    if path == PREFIX and method == "GET":
        with LOCK:
            return core.answer(start_response, "200 OK", figures(USAGE.get(account)))
    if path == PREFIX + "/reset" and method == "POST":
        with LOCK:
            return core.answer(start_response, "200 OK", figures(USAGE.pop(account, None)))
    return core.answer(start_response, "404 Not Found", {"error": f"no {method} {path}"})


def install() -> None:
    core.route(PREFIX, serve)
    core.wrap(core.RANK_ACCOUNTING, "request accounting", count)
