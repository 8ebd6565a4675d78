"""Behaviours switched on per account, and the scaled clock they all run on.

Every test has an account of its own, so a behaviour is switched on for one account
and no other test sees it. The settings, with their defaults (the emulator as stock
moto answers, corrected by ``fixes``):

    clock_scale       1.0   real seconds per AWS second: 0.02 runs a 5-minute AWS
                            scenario in 6 seconds. Every timed behaviour uses it; the
                            provider is not told (tests scale their own timeouts).
    target_health     "instant"  or "timed": target health as an ALB computes it from
                            the target group's health-check settings, and draining for
                            its deregistration delay (see ``elb``).
    boot_seconds      [23, 29]  the range an instance's boot time is drawn from (AWS
                            seconds), for timed target health.
    throttling        false  or true: EC2's and ELB's per-account request token
                            buckets (see ``throttling``); an object of
                            {"<service>:<Action>": [bucket size, refill per second]}
                            switches them on with those buckets replaced.
    spot              {}    Spot interruptions and capacity (see ``spot``):
                            {"interruptions_per_minute": x} interrupts a share x of
                            the running Spot Instances per AWS minute ("seed": n
                            picks them reproducibly); {"no_capacity": [{"instance_type":
                            "t3.small", "zone": "eu-west-1a"}, ...]} ("zone" optional)
                            leaves those Spot pools without capacity.

    GET  /_immutable/behaviour?account=ID        -> the account's settings
    POST /_immutable/behaviour?account=ID        JSON object: the settings to change
    POST /_immutable/behaviour/reset?account=ID  back to the defaults

An unknown setting or a value of the wrong kind is refused with HTTP 400, so a test
cannot believe it switched something on that does not exist.
"""

from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, Iterable

from . import core

PREFIX = "/_immutable/behaviour"

# name -> (default, check(value) -> error or None)
SETTINGS: dict[str, tuple[Any, Callable[[Any], str | None]]] = {}
LOCK = threading.Lock()
ACCOUNTS: dict[str, dict[str, Any]] = {}
# Called with the account before each of its AWS requests (and by routes that serve an
# account), so that timed events that are due happen before the answer.
TICKERS: list[Callable[[str], None]] = []


def declare(name: str, default: Any, check: Callable[[Any], str | None]) -> None:
    SETTINGS[name] = (default, check)


def setting(account: str, name: str) -> Any:
    own = ACCOUNTS.get(account)
    if own is not None and name in own:
        return own[name]
    return SETTINGS[name][0]


def on_tick(ticker: Callable[[str], None]) -> None:
    TICKERS.append(ticker)


def tick(account: str) -> None:
    for ticker in TICKERS:
        ticker(account)


# ----------------------------------------------------------------------------------
# The clock. Timed behaviours keep real monotonic instants and convert AWS durations
# with the account's scale; timestamps shown to clients are wall-clock times.
# ----------------------------------------------------------------------------------


def now() -> float:
    return time.monotonic()


def scale(account: str) -> float:
    return float(setting(account, "clock_scale"))


def real_seconds(account: str, aws_seconds: float) -> float:
    """How long `aws_seconds` of AWS time last in this account, in real seconds."""
    return aws_seconds * scale(account)


def aws_seconds(account: str, real: float) -> float:
    return real / scale(account)


def wall_after(account: str, aws_secs: float) -> float:
    """The wall-clock time (epoch seconds) `aws_secs` AWS seconds from now."""
    return time.time() + real_seconds(account, aws_secs)


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return "must be a positive number"
    return None


def _boot_range(value: Any) -> str | None:
    if (
        not isinstance(value, list)
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in value)
        or value[0] > value[1]
    ):
        return "must be [low, high] AWS seconds, 0 <= low <= high"
    return None


declare("clock_scale", 1.0, _positive_number)
declare("target_health", "instant", lambda v: None if v in ("instant", "timed") else 'must be "instant" or "timed"')
declare("boot_seconds", [23.0, 29.0], _boot_range)


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    account = core.query(environ).get("account", "")

    def current() -> dict[str, Any]:
        return {name: copy.deepcopy(setting(account, name)) for name in SETTINGS}

    if not account:
        return core.answer(start_response, "400 Bad Request", {"error": "the account query parameter is required"})
    if path == PREFIX and method == "GET":
        with LOCK:
            return core.answer(start_response, "200 OK", current())
    if path == PREFIX and method == "POST":
        try:
            wanted = core.json_body(environ)
        except ValueError as err:
            return core.answer(start_response, "400 Bad Request", {"error": f"not JSON: {err}"})
        if not isinstance(wanted, dict):
            return core.answer(start_response, "400 Bad Request", {"error": "expected a JSON object of settings"})
        errors = []
        for name, value in wanted.items():
            if name not in SETTINGS:
                errors.append(f"{name}: no such setting (known: {', '.join(sorted(SETTINGS))})")
                continue
            problem = SETTINGS[name][1](value)
            if problem:
                errors.append(f"{name}: {problem}")
        if errors:
            return core.answer(start_response, "400 Bad Request", {"error": "; ".join(errors)})
        with LOCK:
            ACCOUNTS.setdefault(account, {}).update(copy.deepcopy(wanted))
            return core.answer(start_response, "200 OK", current())
    if path == PREFIX + "/reset" and method == "POST":
        with LOCK:
            ACCOUNTS.pop(account, None)
            return core.answer(start_response, "200 OK", current())
    return core.answer(start_response, "404 Not Found", {"error": f"no {method} {path}"})


def events(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    if TICKERS and account in ACCOUNTS:
        tick(account)
    return following(environ, start_response)


def install() -> None:
    core.route(PREFIX, serve)
    core.wrap(core.RANK_EVENTS, "timed events", events)
