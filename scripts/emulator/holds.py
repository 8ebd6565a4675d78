"""Holding requests, so that crash tests can stop a client at an exact point.

A test names an account and an action; the next requests of that account and action
are held: "before" holds them before moto serves them (the action has not happened),
"after" serves them and holds the response (the action happened, the client does not
know yet). The test sees the held request in the accounting, kills the client, then
releases: with drop=1 requests still waiting "before" are answered with an error
instead of being served, so a dead client's last request never takes effect. A hold
lasts at most HOLD_LIMIT seconds.

    POST /_immutable/hold?account=ID&action=ec2:CreateImage&when=before|after
    GET  /_immutable/hold?account=ID              -> {"ec2:CreateImage": <held now>}
    POST /_immutable/hold/release?account=ID[&drop=1]
"""

from __future__ import annotations

import threading
from time import monotonic
from typing import Iterable

from . import core

PREFIX = "/_immutable/hold"
HOLD_LIMIT = 120.0


class Holds:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        # (account, key) -> [when, requests held now, release: None | "serve" | "drop"]
        self.rules: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]

    def wait(self, account: str, key: str) -> tuple[str, str]:
        """Blocks while a rule holds (account, key); returns (when, outcome)."""
        with self.cond:
            rule = self.rules.get((account, key))
            if rule is None:
                return ("", "serve")
            rule[1] += 1
            self.cond.notify_all()
            until = monotonic() + HOLD_LIMIT
            while rule[2] is None and monotonic() < until:
                self.cond.wait(until - monotonic())
            rule[1] -= 1
            return (rule[0], rule[2] or "drop")

    def serve(self, environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        params = core.query(environ)
        account = params.get("account", "")
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")

        def answer(status: str, payload: object) -> list[bytes]:
            return core.answer(start_response, status, payload)

        if not account:
            return answer("400 Bad Request", {"error": "the account query parameter is required"})
        with self.cond:
            if path == PREFIX and method == "POST":
                key = params.get("action", "")
                when = params.get("when", "before")
                if not key or when not in ("before", "after"):
                    return answer("400 Bad Request", {"error": "action and when=before|after are required"})
                self.rules[(account, key)] = [when, 0, None]
                return answer("200 OK", {})
            if path == PREFIX and method == "GET":
                held = {k: r[1] for (a, k), r in self.rules.items() if a == account}
                return answer("200 OK", held)
            if path == PREFIX + "/release" and method == "POST":
                outcome = "drop" if params.get("drop", "0") not in ("", "0") else "serve"
                for (a, k) in [r for r in self.rules if r[0] == account]:
                    self.rules.pop((a, k))[2] = outcome
                self.cond.notify_all()
                return answer("200 OK", {})
        return answer("404 Not Found", {"error": f"no {method} {path}"})

    def hold(self, environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        rule = self.rules.get((account, key))
        if rule is None:
            return following(environ, start_response)
        if rule[0] == "after":
            response = list(following(environ, start_response))
            self.wait(account, key)
            return response
        _, outcome = self.wait(account, key)
        if outcome == "drop":
            body = (
                b"<Response><Errors><Error><Code>ServiceUnavailable</Code>"
                b"<Message>request dropped by a test hold</Message></Error></Errors></Response>"
            )
            return core.answer_raw(start_response, "503 Service Unavailable", "text/xml", body)
        return following(environ, start_response)


HOLDS = Holds()


def install() -> None:
    core.route(PREFIX, HOLDS.serve)
    core.wrap(core.RANK_HOLDS, "request holds", HOLDS.hold)
