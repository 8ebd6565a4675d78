"""Run moto's AWS emulator on 127.0.0.1 for the end-to-end tests.

Started by ``scripts/local-aws serve``. Binds a free port chosen by the OS, prints
exactly one line ``listening on http://127.0.0.1:PORT`` to stdout (optionally also
writing PORT to ``--port-file``), then serves until it receives SIGTERM/SIGINT or
its standard input reaches end-of-file. The last rule ties the server's lifetime to
the process that started it: a harness keeps our stdin open as a pipe, and when the
harness exits the pipe closes and so does the server.

Moto's behaviour is adjusted in-process in the "patches" section below; every
adjustment is one function registered in ``PATCHES``. The server also counts the
requests of every account by action ("request accounting" below) and serves the
counts under ``/_immutable/requests``.

Environment:
    IMMUTABLE_LOCAL_AWS_VERBOSE=1   log every request (werkzeug's access log)
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import threading
from typing import Callable

VERBOSE = os.environ.get("IMMUTABLE_LOCAL_AWS_VERBOSE", "") not in ("", "0")


def note(message: str) -> None:
    """Diagnostics go to stderr; stdout carries only the `listening on` line."""
    print(f"moto-launcher: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Patches: project-specific behaviour layered onto moto, applied before serving.
# --------------------------------------------------------------------------------------

# Access key ids of the form AKIAMOTO<12 digits> select the account <12 digits>.
#
# Moto 5.x decides the account of a request from the access key id in the SigV4
# Authorization header, but only recognises keys that its own IAM backend issued;
# any other key lands in the default account 123456789012. Its header parser also
# only accepts 20-character [A-Z0-9] key ids. To give every test its own account
# without going through IAM first, such a key maps straight to the account id it
# carries.
ACCOUNT_KEY_RE = re.compile(r"^AKIAMOTO(?P<account>[0-9]{12})$")


def patch_account_from_access_key() -> None:
    import moto.iam.models as iam_models
    from moto.core import DEFAULT_ACCOUNT_ID

    original = iam_models.get_account_id_from

    def get_account_id_from(access_key: str) -> str:
        account = original(access_key)
        if account == DEFAULT_ACCOUNT_ID:
            match = ACCOUNT_KEY_RE.match(access_key or "")
            if match:
                return match.group("account")
        return account

    # moto.core.responses imports this name from moto.iam.models on every request.
    iam_models.get_account_id_from = get_account_id_from


# Target health from an instance tag, so that failed rollouts can be tested.
#
# Moto reports every registered instance target as healthy, whatever the instance
# does. Real load balancers report instances that fail health checks as unhealthy,
# new ones as initial, and instances that are not running as unused. With this patch:
#   - an instance tagged immutable-test:health=<state> reports <state>
#     (unhealthy, initial, ...), with the reason from immutable-test:health-reason
#     (default Target.ResponseCodeMismatch for unhealthy), and
#   - an instance that is not running reports unused / Target.InvalidState.
HEALTH_TAG = "immutable-test:health"
HEALTH_REASON_TAG = "immutable-test:health-reason"
DEFAULT_REASONS = {
    "unhealthy": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"),
    "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
}


def patch_target_health_from_tags() -> None:
    import moto.elbv2.models as elbv2_models

    original = elbv2_models.FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):  # type: ignore[no-untyped-def]
        status = original(self, target, ec2_backend)
        instance_id = target.get("Id", "")
        if status.status != "healthy" or not instance_id.startswith("i-"):
            return status
        try:
            instance = ec2_backend.get_instance_by_id(instance_id)
        except Exception:  # noqa: BLE001 - unknown ids keep moto's answer
            return status
        if instance is None:
            return status
        state = getattr(instance, "state", "running")
        if state != "running":
            return elbv2_models.FakeHealthStatus(
                instance_id, status.port, self.health_check_port, "unused",
                "Target.InvalidState", f"Target is in the {state} state",
            )
        tags = dict(ec2_backend.tags.get(instance_id, {}))
        wanted = tags.get(HEALTH_TAG)
        if not wanted or wanted == "healthy":
            return status
        reason, description = DEFAULT_REASONS.get(wanted, ("Target.FailedHealthChecks", "Health checks failed"))
        reason = tags.get(HEALTH_REASON_TAG, reason)
        return elbv2_models.FakeHealthStatus(
            instance_id, status.port, self.health_check_port, wanted, reason, description,
        )

    elbv2_models.FakeTargetGroup.health_for = health_for


# Spot Fleet instances carry the fleet's id in a tag.
#
# On AWS every instance a Spot Fleet launches is tagged
# aws:ec2spot:fleet-request-id=<fleet id>, which lets one DescribeInstances call find
# the instances of many fleets (DescribeSpotFleetInstances takes one fleet at a time).
# Moto launches fleet instances without that tag.
FLEET_ID_TAG = "aws:ec2spot:fleet-request-id"


def patch_fleet_instance_tag() -> None:
    import moto.ec2.models.spot_requests as spot_models

    original = spot_models.SpotInstanceRequest.launch_instance

    def launch_instance(self):  # type: ignore[no-untyped-def]
        instance = original(self)
        if self.spot_fleet_id:
            self.ec2_backend.create_tags([instance.id], {FLEET_ID_TAG: self.spot_fleet_id})
        return instance

    spot_models.SpotInstanceRequest.launch_instance = launch_instance


# Holding requests, so that crash tests can stop a client at an exact point.
#
# A test names an account and an action; the next requests of that account and
# action are held: "before" holds them before moto serves them (the action has not
# happened), "after" serves them and holds the response (the action happened, the
# client does not know yet). The test sees the held request in the accounting, kills
# the client, then releases: with drop=1 requests still waiting "before" are
# answered with an error instead of being served, so a dead client's last request
# never takes effect. A hold lasts at most HOLD_LIMIT seconds.
#
#   POST /_immutable/hold?account=ID&action=ec2:CreateImage&when=before|after
#   GET  /_immutable/hold?account=ID              -> {"ec2:CreateImage": <held now>}
#   POST /_immutable/hold/release?account=ID[&drop=1]
HOLD_PREFIX = "/_immutable/hold"
HOLD_LIMIT = 120.0


class Holds:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        # (account, key) -> [when, requests held now, release: None | "serve" | "drop"]
        self.rules: dict[tuple[str, str], list] = {}  # type: ignore[type-arg]

    def wait(self, account: str, key: str) -> tuple[str, str]:
        """Blocks while a rule holds (account, key); returns (when, outcome)."""
        from time import monotonic

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

    def serve(self, environ: dict, start_response: Callable):  # type: ignore[type-arg]
        import json
        from urllib.parse import parse_qs

        query = parse_qs(environ.get("QUERY_STRING", ""))
        account = query.get("account", [""])[0]
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")

        def answer(status: str, payload: object):  # type: ignore[no-untyped-def]
            body = json.dumps(payload, sort_keys=True).encode("utf-8")
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        if not account:
            return answer("400 Bad Request", {"error": "the account query parameter is required"})
        with self.cond:
            if path == HOLD_PREFIX and method == "POST":
                key = query.get("action", [""])[0]
                when = query.get("when", ["before"])[0]
                if not key or when not in ("before", "after"):
                    return answer("400 Bad Request", {"error": "action and when=before|after are required"})
                self.rules[(account, key)] = [when, 0, None]
                return answer("200 OK", {})
            if path == HOLD_PREFIX and method == "GET":
                held = {k: r[1] for (a, k), r in self.rules.items() if a == account}
                return answer("200 OK", held)
            if path == HOLD_PREFIX + "/release" and method == "POST":
                outcome = "drop" if query.get("drop", ["0"])[0] not in ("", "0") else "serve"
                for (a, k) in [r for r in self.rules if r[0] == account]:
                    self.rules.pop((a, k))[2] = outcome
                self.cond.notify_all()
                return answer("200 OK", {})
        return answer("404 Not Found", {"error": f"no {method} {path}"})


HOLDS = Holds()


def patch_request_holds() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def call(self, environ, start_response):  # type: ignore[no-untyped-def]
        path = environ.get("PATH_INFO", "")
        if path == HOLD_PREFIX or path.startswith(HOLD_PREFIX + "/"):
            return HOLDS.serve(environ, start_response)
        if not HOLDS.rules:
            return original(self, environ, start_response)
        try:
            account, key = RequestAccounting.classify(environ)
        except Exception:  # noqa: BLE001 - holds must never break a request
            return original(self, environ, start_response)
        if (account, key) not in HOLDS.rules:
            return original(self, environ, start_response)
        if HOLDS.rules[(account, key)][0] == "after":
            response = list(original(self, environ, start_response))
            HOLDS.wait(account, key)
            return response
        _, outcome = HOLDS.wait(account, key)
        if outcome == "drop":
            body = (
                b"<Response><Errors><Error><Code>ServiceUnavailable</Code>"
                b"<Message>request dropped by a test hold</Message></Error></Errors></Response>"
            )
            start_response("503 Service Unavailable", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = call


# Idempotency tokens, as AWS honours them.
#
# A client that loses the response to a create call retries it with the same
# ClientToken, and AWS answers with what the first call created instead of creating
# it again. Moto ignores the token, so a retried call after a lost response would
# leave a duplicate that only the emulator makes. With this patch the token (per
# account and region) is remembered for:
#   - RequestSpotFleet (SpotFleetRequestConfig.ClientToken): the same fleet id,
#   - RunInstances (ClientToken): the same reservation,
#   - CreateLaunchTemplate (ClientToken): the same launch template,
# as long as that object still exists. (AWS also rejects a reused token with other
# parameters, IdempotentParameterMismatch; that check is not emulated.)
_CLIENT_TOKEN = threading.local()


def patch_client_tokens() -> None:
    import moto.ec2.models.instances as instance_models
    import moto.ec2.models.launch_templates as template_models
    import moto.ec2.models.spot_requests as spot_models
    import moto.ec2.responses.instances as instance_responses
    import moto.ec2.responses.launch_templates as template_responses
    import moto.ec2.responses.spot_fleets as fleet_responses

    def remember_token(response_cls, method: str, api: str, token_of) -> None:  # type: ignore[no-untyped-def]
        original = getattr(response_cls, method)

        def handler(self):  # type: ignore[no-untyped-def]
            token = token_of(self)
            _CLIENT_TOKEN.value = (api, token) if token else None
            try:
                return original(self)
            finally:
                _CLIENT_TOKEN.value = None

        setattr(response_cls, method, handler)

    def replay(backend_cls, method: str, api: str, existing) -> None:  # type: ignore[no-untyped-def]
        original = getattr(backend_cls, method)

        def create(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            pending = getattr(_CLIENT_TOKEN, "value", None)
            # Only the outermost call of the request sees the token (RequestSpotFleet
            # launches instances through RunInstances' backend method).
            _CLIENT_TOKEN.value = None
            if not pending or pending[0] != api:
                return original(self, *args, **kwargs)
            seen = self.__dict__.setdefault("_immutable_client_tokens", {})
            earlier = seen.get(pending)
            if earlier is not None and existing(self, earlier):
                return earlier
            created = original(self, *args, **kwargs)
            seen[pending] = created
            return created

        setattr(backend_cls, method, create)

    remember_token(
        fleet_responses.SpotFleets, "request_spot_fleet", "RequestSpotFleet",
        lambda r: (r._get_param("SpotFleetRequestConfig", {}) or {}).get("ClientToken"),
    )
    replay(
        spot_models.SpotRequestBackend, "request_spot_fleet", "RequestSpotFleet",
        lambda backend, fleet: fleet.id in backend.spot_fleet_requests,
    )
    remember_token(
        instance_responses.InstanceResponse, "run_instances", "RunInstances",
        lambda r: r._get_param("ClientToken"),
    )
    replay(
        instance_models.InstanceBackend, "run_instances", "RunInstances",
        lambda backend, reservation: reservation.id in backend.reservations,
    )
    remember_token(
        template_responses.LaunchTemplates, "create_launch_template", "CreateLaunchTemplate",
        lambda r: r._get_param("ClientToken"),
    )
    replay(
        template_models.LaunchTemplateBackend, "create_launch_template", "CreateLaunchTemplate",
        lambda backend, template: template.id in backend.launch_templates,
    )


# AMI names are unique per owner and region.
#
# AWS refuses CreateImage with a name the account already uses
# (InvalidAMIName.Duplicate, naming the AMI that has it); moto registers a second
# image. CreateImage takes no idempotency token, so a client retrying it after a
# lost response must find the image the first call made: this gives it the same
# answer AWS would.
def patch_unique_ami_names() -> None:
    import moto.ec2.models.amis as ami_models
    from moto.ec2.exceptions import EC2ClientError

    original = ami_models.AmiBackend.create_image

    def create_image(self, instance_id, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        for ami in list(self.amis.values()):
            if ami.name == name and ami.owner_id == self.account_id and ami.state != "deregistered":
                raise EC2ClientError(
                    "InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {ami.id}"
                )
        return original(self, instance_id, name, *args, **kwargs)

    ami_models.AmiBackend.create_image = create_image


# Cancelling a Spot Fleet request that no longer exists is answered, not a crash.
#
# AWS lists unknown ids under UnsuccessfulFleetRequests (fleetRequestIdDoesNotExist)
# in a normal answer. Moto forgets a fleet cancelled with termination and then fails
# a second cancel of it with an HTTP 500, which clients retry as a server error:
# every retry of a cancel whose first answer was lost would fail the same way.
def patch_cancel_unknown_fleets() -> None:
    from moto.core.responses import ActionResult
    import moto.ec2.responses.spot_fleets as fleet_responses

    def cancel_spot_fleet_requests(self):  # type: ignore[no-untyped-def]
        ids = self._get_param("SpotFleetRequestIds", [])
        terminate = self._get_bool_param("TerminateInstances")
        known = [i for i in ids if i in self.ec2_backend.spot_fleet_requests]
        cancelled = self.ec2_backend.cancel_spot_fleet_requests(known, terminate)
        successful = [
            {
                "SpotFleetRequestId": fleet.id,
                "CurrentSpotFleetRequestState": "cancelled_terminating" if terminate else "cancelled_running",
                "PreviousSpotFleetRequestState": "active",
            }
            for fleet in cancelled
        ]
        unsuccessful = [
            {
                "SpotFleetRequestId": i,
                "Error": {
                    "Code": "fleetRequestIdDoesNotExist",
                    "Message": f"The spot fleet request Id '{i}' does not exist",
                },
            }
            for i in ids
            if i not in known
        ]
        return ActionResult(
            {"SuccessfulFleetRequests": successful, "UnsuccessfulFleetRequests": unsuccessful}
        )

    fleet_responses.SpotFleets.cancel_spot_fleet_requests = cancel_spot_fleet_requests


# Tags set on a Spot Fleet request after its creation (CreateTags, DeleteTags).
#
# AWS: "You can add tags to a Spot Fleet request ... after you create it" with
# create-tags, and DescribeSpotFleetRequests returns them with the request's other
# tags (Amazon EC2 User Guide, "Tag a Spot Fleet",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/tag-spot-fleet.html). Moto
# keeps a request's tags on the request object, from its TagSpecifications only, and
# CreateTags writes to a separate store that DescribeSpotFleetRequests never reads.
# Here CreateTags and DeleteTags of a Spot Fleet request id also change the request's
# own tags.
def patch_fleet_request_tags() -> None:
    from moto.ec2.models.tags import TagBackend

    original_create = TagBackend.create_tags
    original_delete = TagBackend.delete_tags

    def fleet_tags(backend: object, resource_id: str) -> dict[str, str] | None:
        fleets = getattr(backend, "spot_fleet_requests", {})
        fleet = fleets.get(resource_id) if resource_id.startswith("sfr-") else None
        if fleet is None:
            return None
        return fleet.tags.setdefault("spot-fleet-request", {})

    def create_tags(self, resource_ids, tags):  # type: ignore[no-untyped-def]
        result = original_create(self, resource_ids, tags)
        for resource_id in resource_ids:
            own = fleet_tags(self, resource_id)
            if own is not None:
                own.update(tags)
        return result

    def delete_tags(self, resource_ids, tags):  # type: ignore[no-untyped-def]
        result = original_delete(self, resource_ids, tags)
        for resource_id in resource_ids:
            own = fleet_tags(self, resource_id)
            for key, value in (tags or {}).items():
                if own is not None and key in own and (value is None or own[key] == value):
                    own.pop(key)
        return result

    TagBackend.create_tags = create_tags
    TagBackend.delete_tags = delete_tags


# A launch template version based on another (CreateLaunchTemplateVersion with
# SourceVersion).
#
# AWS: "The new version inherits the same launch parameters as the source version,
# except for parameters that you specify in LaunchTemplateData" (Amazon EC2 API
# Reference, CreateLaunchTemplateVersion, SourceVersion,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateLaunchTemplateVersion.html).
# Moto ignores SourceVersion: the new version holds only the data given. Here the
# source version's data is the base, and each top-level parameter given replaces it.
def patch_launch_template_source_version() -> None:
    import copy

    from moto.ec2.responses.launch_templates import LaunchTemplates

    original = LaunchTemplates.create_launch_template_version

    def create_launch_template_version(self):  # type: ignore[no-untyped-def]
        source = self._get_param("SourceVersion")
        if source is None:
            return original(self)
        name = self._get_param("LaunchTemplateName")
        template_id = self._get_param("LaunchTemplateId")
        if template_id:
            template = self.ec2_backend.get_launch_template(template_id)
        else:
            template = self.ec2_backend.get_launch_template_by_name(name)
        merged = copy.deepcopy(template.get_version(source).data)
        merged.update(self._get_param("LaunchTemplateData", {}))
        get_param = self._get_param

        def with_merged_data(key, if_none=None):  # type: ignore[no-untyped-def]
            return merged if key == "LaunchTemplateData" else get_param(key, if_none)

        self._get_param = with_merged_data
        try:
            return original(self)
        finally:
            del self._get_param

    LaunchTemplates.create_launch_template_version = create_launch_template_version


PATCHES: list[tuple[str, Callable[[], None]]] = [
    ("account id from access key", patch_account_from_access_key),
    ("target health from instance tags", patch_target_health_from_tags),
    ("fleet id tag on Spot Fleet instances", patch_fleet_instance_tag),
    ("request holds for crash tests", patch_request_holds),
    ("client tokens on RequestSpotFleet, RunInstances, CreateLaunchTemplate", patch_client_tokens),
    ("unique AMI names on CreateImage", patch_unique_ami_names),
    ("cancelling unknown Spot Fleet requests", patch_cancel_unknown_fleets),
        ("tags of Spot Fleet requests after their creation", patch_fleet_request_tags),
    ("launch template versions based on a source version", patch_launch_template_source_version),
]


def apply_patches() -> None:
    for name, patch in PATCHES:
        patch()
        if VERBOSE:
            note(f"patched: {name}")


# --------------------------------------------------------------------------------------
# Request accounting: which AWS actions each account asked for.
# --------------------------------------------------------------------------------------

# Tests assert on what the provider asked AWS to do (for example: a plan that fails
# validation makes no mutating call). Every request is counted under its account
# (from the access key id, as moto itself decides it) as "<service>:<Action>":
#   - query protocol (EC2, ELBv2, IAM, STS): the Action parameter of the query
#     string or of the form-encoded body,
#   - JSON protocol: the operation after the last "." of X-Amz-Target,
#   - anything else (REST services): "<METHOD> <path>".
# The service is the signing name from the SigV4 credential scope, with
# elasticloadbalancing version 2015-12-01 reported as elbv2.
#
# Benchmarks subtract the emulator's own latency from what they measure, so the
# time spent serving each request (from receiving it to its complete response, the
# socket write aside) is summed per account and key too, and so is the account's
# busy time: the wall-clock time during which at least one of its requests was being
# served (concurrent requests overlap, so this is at most the sum of the seconds).
#
#   GET  /_immutable/requests?account=ID        -> {"ec2:DescribeImages": 3, ...}
#   POST /_immutable/requests/reset?account=ID  -> the counts before the reset
#   either with &timing=1                       -> {"counts": {...},
#                                                   "seconds": {"ec2:DescribeImages": 0.012, ...},
#                                                   "busy_seconds": 0.011}
#
# These endpoints are served here, in front of moto, and are not counted.
ACCOUNTING_PREFIX = "/_immutable/requests"
CREDENTIAL_RE = re.compile(r"Credential=(?P<key>[^/,\s]+)/[^/]*/[^/]*/(?P<service>[^/,\s]+)/")
ELBV2_VERSION = "2015-12-01"


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


class RequestAccounting:
    """WSGI middleware: counts and times requests per account and serves the figures."""

    def __init__(self, app: Callable) -> None:  # type: ignore[type-arg]
        self.app = app
        self.lock = threading.Lock()
        self.usage: dict[str, AccountUsage] = {}

    def __call__(self, environ: dict, start_response: Callable):  # type: ignore[type-arg]
        path = environ.get("PATH_INFO", "")
        if path == ACCOUNTING_PREFIX or path.startswith(ACCOUNTING_PREFIX + "/"):
            return self.serve(environ, start_response)
        try:
            account, key = self.classify(environ)
        except Exception as err:  # noqa: BLE001 - accounting must never break a request
            note(f"request accounting: cannot classify request: {err!r}")
            account, key = "unknown", "unknown:unknown"
        from time import perf_counter

        started = perf_counter()
        with self.lock:
            usage = self.usage.setdefault(account, AccountUsage())
            usage.begin(key, started)
        try:
            # Moto computes whole responses; collecting the body here times that work
            # without the socket write, and records it before the client has the answer.
            response = self.app(environ, start_response)
            try:
                return list(response)
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()
        finally:
            with self.lock:
                # After a reset the figures land on the forgotten usage, as intended.
                usage.end(key, started, perf_counter())

    @staticmethod
    def classify(environ: dict) -> tuple[str, str]:  # type: ignore[type-arg]
        from urllib.parse import parse_qs

        from moto.core import DEFAULT_ACCOUNT_ID

        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = CREDENTIAL_RE.search(auth)
        access_key, service = (match.group("key"), match.group("service")) if match else ("", "unknown")
        account = DEFAULT_ACCOUNT_ID
        if access_key:
            import moto.iam.models as iam_models

            # The patched lookup (see patch_account_from_access_key).
            account = iam_models.get_account_id_from(access_key)

        params = parse_qs(environ.get("QUERY_STRING", ""))
        content_type = environ.get("CONTENT_TYPE", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            body = read_body(environ)
            params.update(parse_qs(body.decode("utf-8", errors="replace")))
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            action = target.rsplit(".", 1)[-1]
        elif params.get("Action"):
            action = params["Action"][0]
        else:
            action = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '')}"
        if service == "elasticloadbalancing" and params.get("Version", [""])[0] == ELBV2_VERSION:
            service = "elbv2"
        return account, f"{service}:{action}"

    def serve(self, environ: dict, start_response: Callable):  # type: ignore[type-arg]
        import json
        from urllib.parse import parse_qs

        from time import perf_counter

        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        account = query.get("account", [""])[0]
        timing = query.get("timing", ["0"])[0] not in ("", "0")

        def figures(usage: AccountUsage | None) -> object:
            usage = usage or AccountUsage()
            return usage.timing(perf_counter()) if timing else dict(usage.counts)

        def answer(status: str, payload: object):  # type: ignore[no-untyped-def]
            body = json.dumps(payload, sort_keys=True).encode("utf-8")
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]

        if not account:
            return answer("400 Bad Request", {"error": "the account query parameter is required"})
        if path == ACCOUNTING_PREFIX and method == "GET":
            with self.lock:
                return answer("200 OK", figures(self.usage.get(account)))
        if path == ACCOUNTING_PREFIX + "/reset" and method == "POST":
            with self.lock:
                return answer("200 OK", figures(self.usage.pop(account, None)))
        return answer("404 Not Found", {"error": f"no {method} {path}"})


def read_body(environ: dict) -> bytes:  # type: ignore[type-arg]
    """Reads the request body and puts it back for the application behind us."""
    import io

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


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------


def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    level = logging.INFO if VERBOSE else logging.ERROR
    logging.getLogger("werkzeug").setLevel(level)


def watch_stdin(stop: threading.Event) -> None:
    """Set `stop` once stdin reaches end-of-file (the parent went away)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return  # no usable stdin: rely on signals alone
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass
    stop.set()


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free port)")
    parser.add_argument("--port-file", help="also write the bound port to this file")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="keep serving after stdin reaches end-of-file (for manual use)",
    )
    args = parser.parse_args(argv)

    configure_logging()
    apply_patches()

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = RequestAccounting(DomainDispatcherApplication(create_backend_app))
    # make_server binds and listens before returning, so the port is live from here on.
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    host, port = server.server_address[:2]
    # Some moto services build URLs from the port they believe they serve on.
    os.environ["MOTO_PORT"] = str(port)

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    serving = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    serving.start()
    if not args.ignore_stdin:
        threading.Thread(target=watch_stdin, args=(stop,), name="stdin-watch", daemon=True).start()

    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"listening on http://{host}:{port}", flush=True)

    while not stop.wait(0.5):
        if not serving.is_alive():
            note("server thread stopped unexpectedly")
            return 1

    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
