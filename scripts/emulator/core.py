"""What every behaviour module shares: diagnostics, how a request is classified, JSON
answers, and the server's two extension points.

* A *route* serves a control path of the emulator itself (``/_immutable/...``): the
  request accounting, holds, behaviour switches, instance metadata. Routes are not
  counted and never reach moto.
* A *wrapper* sits around moto for every AWS request, knowing the request's account
  and ``<service>:<Action>`` key. Wrappers run in rank order, the lowest outermost:
  accounting (counts every request, throttled ones too), then throttling, then the
  timed events that are due, then holds, then the protocols moto lacks, then moto.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from typing import Callable, Iterable
from urllib.parse import parse_qs

VERBOSE = os.environ.get("IMMUTABLE_LOCAL_AWS_VERBOSE", "") not in ("", "0")

StartResponse = Callable[..., object]
App = Callable[[dict, StartResponse], Iterable[bytes]]  # type: ignore[type-arg]
# (environ, start_response, account, key, next) -> response
Wrapper = Callable[[dict, StartResponse, str, str, App], Iterable[bytes]]  # type: ignore[type-arg]

ROUTES: dict[str, App] = {}
WRAPPERS: list[tuple[int, str, Wrapper]] = []

# Wrapper ranks (outermost first).
RANK_ACCOUNTING = 10
RANK_THROTTLING = 20
RANK_EVENTS = 30
RANK_HOLDS = 40
RANK_PROTOCOLS = 50


def note(message: str) -> None:
    """Diagnostics go to stderr; stdout carries only the `listening on` line."""
    print(f"moto-launcher: {message}", file=sys.stderr, flush=True)


def route(prefix: str, app: App) -> None:
    """Serves `prefix` and every path below it with `app`."""
    ROUTES[prefix] = app


def wrap(rank: int, name: str, wrapper: Wrapper) -> None:
    WRAPPERS.append((rank, name, wrapper))
    WRAPPERS.sort(key=lambda w: w[0])


def query(environ: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """The query string's parameters, the first value of each."""
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def answer(start_response: StartResponse, status: str, payload: object) -> list[bytes]:
    body = json.dumps(payload, sort_keys=True).encode("utf-8")
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def answer_raw(start_response: StartResponse, status: str, content_type: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def read_body(environ: dict) -> bytes:  # type: ignore[type-arg]
    """Reads the request body and puts it back for the application behind us."""
    length = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    if length.isdigit():
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):
        body = stream.read()
    else:
        return b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def json_body(environ: dict) -> object:  # type: ignore[type-arg]
    body = read_body(environ)
    return json.loads(body.decode("utf-8")) if body.strip() else {}


# Every request is classified under its account (from the access key id, as moto itself
# decides it) as "<service>:<Action>":
#   - query protocol (EC2, ELBv2, IAM, STS): the Action parameter of the query string or
#     of the form-encoded body,
#   - JSON protocol: the operation after the last "." of X-Amz-Target,
#   - Smithy RPC v2 CBOR (CloudWatch from current SDKs, see ``rpcv2``): the operation
#     of the path /service/<service>/operation/<Operation>,
#   - anything else (REST services): "<METHOD> <path>".
# So one action has one key whichever protocol a client speaks: CloudWatch's
# DescribeAlarms is "monitoring:DescribeAlarms" (its signing name) in the query, JSON
# and CBOR protocols alike.
# The service is the signing name from the SigV4 credential scope, with
# elasticloadbalancing version 2015-12-01 reported as elbv2.
CREDENTIAL_RE = re.compile(r"Credential=(?P<key>[^/,\s]+)/[^/]*/[^/]*/(?P<service>[^/,\s]+)/")
ELBV2_VERSION = "2015-12-01"
RPCV2_PATH_RE = re.compile(r"^/service/[^/]+/operation/(?P<operation>[^/]+)$")


def classify(environ: dict) -> tuple[str, str]:  # type: ignore[type-arg]
    cached = environ.get("immutable.classified")
    if cached:
        return cached  # type: ignore[no-any-return]
    from moto.core import DEFAULT_ACCOUNT_ID

    auth = environ.get("HTTP_AUTHORIZATION", "")
    match = CREDENTIAL_RE.search(auth)
    access_key, service = (match.group("key"), match.group("service")) if match else ("", "unknown")
    account = DEFAULT_ACCOUNT_ID
    if access_key:
        import moto.iam.models as iam_models

        # The patched lookup (see fixes.patch_account_from_access_key).
        account = iam_models.get_account_id_from(access_key)

    params = parse_qs(environ.get("QUERY_STRING", ""))
    content_type = environ.get("CONTENT_TYPE", "")
    if content_type.startswith("application/x-www-form-urlencoded"):
        body = read_body(environ)
        params.update(parse_qs(body.decode("utf-8", errors="replace")))
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    rpc = RPCV2_PATH_RE.match(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
    if target:
        action = target.rsplit(".", 1)[-1]
    elif params.get("Action"):
        action = params["Action"][0]
    elif rpc:
        action = rpc.group("operation")
    else:
        action = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
    if service == "elasticloadbalancing" and params.get("Version", [""])[0] == ELBV2_VERSION:
        service = "elbv2"
    environ["immutable.classified"] = (account, f"{service}:{action}")
    return account, f"{service}:{action}"


class Server:
    """The WSGI application: routes first, then the wrappers around moto."""

    def __init__(self, moto_app: App) -> None:
        self.moto_app = moto_app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:  # type: ignore[type-arg]
        path = environ.get("PATH_INFO", "")
        for prefix, app in ROUTES.items():
            if path == prefix or path.startswith(prefix + "/"):
                return app(environ, start_response)
        try:
            account, key = classify(environ)
        except Exception as err:  # noqa: BLE001 - classification must never break a request
            note(f"cannot classify request: {err!r}")
            account, key = "unknown", "unknown:unknown"
        return self.call(0, environ, start_response, account, key)

    def call(self, index: int, environ: dict, start_response: StartResponse, account: str, key: str):  # type: ignore[no-untyped-def,type-arg]
        if index >= len(WRAPPERS):
            return self.moto_app(environ, start_response)
        _, _, wrapper = WRAPPERS[index]

        def following(env: dict, sr: StartResponse) -> Iterable[bytes]:  # type: ignore[type-arg]
            return self.call(index + 1, env, sr, account, key)

        return wrapper(environ, start_response, account, key, following)
