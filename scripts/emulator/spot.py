"""Spot interruptions (as a Spot Instance reads them from its instance metadata,
served by ``imds``), Spot Fleets that keep their target capacity, and Spot capacity
that runs out.

Moto never interrupts a Spot Instance, never replaces an instance of a Spot Fleet,
has capacity for everything, and has no DescribeSpotFleetRequestHistory. Here, per
account (every time is on the account's scaled clock, ``switches``: ``clock_scale``):

Interruptions
-------------
    POST /_immutable/spot/interrupt?account=ID&instance=i-...[&rebalance_lead=AWS_SECONDS]
         -> the interruption (as listed below); 404 for an unknown instance, 400 for
            one that is not a Spot Instance or does not terminate on interruption,
            409 for one that is not running or is being interrupted already
    GET  /_immutable/spot?account=ID
         -> {"now": ..., "interruptions": [{"instance", "region", "fleet", "cause"
            ("request" or "random"), "state" ("scheduled", "noticed", "terminated",
            "rebalanced": terminated by its fleet, below, or "gone": stopped or
            terminated otherwise first), "replacement" (the instance its fleet
            launched on the rebalance recommendation, or null), "rebalance_time",
            "notice_time", "termination_time", "fleet_termination_time" (UTC,
            milliseconds, or null), and the same as "..._epoch" seconds}, ...]}

AWS: "A Spot Instance interruption notice is a warning that is issued two minutes
before Amazon EC2 stops or terminates your Spot Instance", and "If your Spot Instance
is marked to be stopped or terminated by Amazon EC2, the instance-action item is
present in your instance metadata", as {"action": "terminate", "time":
"2017-09-18T08:22:00Z"}, the approximate time of the action; otherwise the item "is
not present ... and you receive an HTTP 404 error". The older spot/termination-time
item holds the same time (Amazon EC2 User Guide, "Spot Instance interruption
notices",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html).
An interruption of instance I, requested at instant T:

  - without rebalance_lead: the notice is posted at T; I is terminated at T + 120
    AWS seconds, the notice's "time";
  - with rebalance_lead=L (AWS seconds, L >= 0): the rebalance recommendation is
    posted at T (events/recommendations/rebalance = {"noticeTime": T}); the
    interruption notice follows at T + L; I is terminated at T + L + 120. AWS: the
    recommendation "can arrive sooner than the two-minute Spot Instance interruption
    notice", or "along with" it (L = 0) (Amazon EC2 User Guide, "EC2 instance
    rebalance recommendations",
    https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html).

Only Spot Instances that are running and whose interruption behaviour is terminate
(the default, and what Spot Fleet requests of the provider use) are interrupted.

When the notice is posted, the instance's Spot request gets the status code
instance-terminated-no-capacity, its state closed (one-time request) or open
(persistent): "When Amazon EC2 interrupts a Spot Instance if it needs the capacity
back and the instance is configured to terminate on interruption, the status is
immediately set to instance-terminated-no-capacity ... However, the instance remains
in the running state for 2 minutes ... After 2 minutes, the instance state is set to
terminated" (Amazon EC2 User Guide, "Spot request status",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-request-status.html).
An interruption here is Amazon EC2 taking its capacity back; the -by-price codes
(the Spot price above a maximum price) are not emulated. The status message reads as
AWS words it for that code: "Your Spot instance was terminated because there is no
Spot capacity available that matches your request."

At the termination time the instance is terminated (state transition reason
"Service initiated (<time> GMT)") with the state reason
Server.SpotInstanceTermination, the code that marks an interrupted, terminated Spot
Instance (Amazon EC2 User Guide, "Find interrupted Spot Instances",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/finding-an-interrupted-Spot-Instance.html;
Amazon EC2 API Reference, StateReason,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_StateReason.html), leaves
its target groups as any terminated instance does, and its fleet's history records
it (below).

Random interruptions: the setting ``spot`` = {"interruptions_per_minute": x} (a
number >= 0, optional "seed": an integer) interrupts, per AWS minute, a share x of
the account's running Spot Instances that are not being interrupted already (x = 0.5:
half of them a minute). Shares accumulate between requests; which instances go is
drawn by a generator seeded with the seed and the account id, from the candidates in
instance-id order. Each is interrupted as above, without a rebalance recommendation.

Spot Fleet
----------
A fleet's type comes from its request (RequestSpotFleet Type, default maintain).
AWS: "When this value is maintain, the Spot Fleet maintains the target capacity. The
Spot Fleet places the required requests to meet capacity and automatically
replenishes any interrupted instances." With request, it "does not attempt to
replenish Spot Instances if capacity is diminished, nor does it submit requests in
alternative Spot pools if capacity is not available" (Amazon EC2 API Reference,
SpotFleetRequestConfigData, Type,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfigData.html).
DescribeSpotFleetRequests shows the Type. In every account that uses this module (a
``spot`` setting, or an interruption asked for), an active maintain fleet whose
running instances weigh less than its target capacity launches the difference
through moto's own launch path (SpotFleetRequest.create_spot_requests): the
replacement gets the fleet's launch specification, instance tags, the
aws:ec2spot:fleet-request-id tag, instance profile, metadata options and, while the
fleet's On-Demand part is short, the On-Demand purchasing option (``fixes``) as the
first instances did. That is due before each AWS request of the account, so a
replacement appears at the first request after the termination. Only what leaves the
fleet below its target is replaced: after ModifySpotFleetRequest lowered the target
with noTermination, the instances above it may be terminated (by the user or an
interruption) with nothing launched in their place, as AWS describes it: the fleet
keeps its current size "but not replace any Spot Instances that are interrupted or
that you terminate manually" (Amazon EC2 API Reference, ModifySpotFleetRequest,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySpotFleetRequest.html;
the fleet's fulfilled capacity is that of its pending and running instances,
``fixes``).

Capacity Rebalancing: a maintain fleet requested with SpotMaintenanceStrategies.
CapacityRebalance (kept by ``fixes``) acts on a rebalance recommendation of one of its
instances. AWS: with launch, "Spot Fleet launches a new replacement Spot Instance when
a rebalance notification is emitted for an existing Spot Instance in the fleet. Spot
Fleet does not terminate the instances that receive a rebalance notification"; with
launch-before-terminate it launches the replacement "and then, after a delay that you
specify (in TerminationDelay), terminates the instances that received a rebalance
notification" (Amazon EC2 API Reference, SpotCapacityRebalance,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotCapacityRebalance.html).
Here the replacement (the instance's weighted capacity, through the same launch path)
is launched as the recommendation is posted, so the fleet runs above its target until
the old instance is gone, which then launches nothing more; with
launch-before-terminate the fleet terminates the old instance TerminationDelay AWS
seconds later unless its interruption came first (it leaves its target groups, and
its interruption's state is "rebalanced").

Every override of a launch template configuration is a pool of the fleet (moto used
only the first override of each configuration): one launch specification per
override, so a fleet of two instance types in three subnets has six pools. Which
pools a launch uses is moto's allocation (the cheapest pool, or round-robin for
"diversified").

ActivityStatus is reported as AWS defines it: "If there is an error, the status is
error. After all requests are placed, the status is pending_fulfillment. If the size
of the fleet is equal to or greater than its target capacity, the status is
fulfilled" (Amazon EC2 API Reference, SpotFleetRequestConfig,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfig.html):
fulfilled when the running instances reach the target, error while the last launch
attempt found no capacity, pending_fulfillment otherwise.

Capacity shortages
------------------
The setting ``spot`` = {"no_capacity": [{"instance_type": "t3.small", "zone":
"eu-west-1a"}, ...]} ("zone" optional: every zone) takes the Spot capacity of those
pools away. A pool's zone is its subnet's (a pool without a subnet launches where
moto puts such instances, the region's first zone). A launch wants the pools moto's
allocation picks from all of the fleet's pools; for each of them without capacity the
fleet history records an error event, as AWS recorded it for a fleet that found no
capacity: EventType error, EventSubType spotFleetRequestConfigurationInvalid,
EventDescription "<instance type>, <AMI id>, Linux/UNIX: There is no Spot capacity
available that matches your request." (AWS's answer in an acceptance test of the
Terraform AWS provider, hashicorp/terraform-provider-aws pull request 26493,
https://github.com/hashicorp/terraform-provider-aws/pull/26493; sub-types: Amazon EC2
API Reference, EventInformation,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_EventInformation.html).
A maintain fleet then launches in its pools that have capacity; a request fleet does
not (see Type above). A fleet left below its target for want of capacity reports
activity error and tries again every RETRY_SECONDS AWS seconds, and at once when the
account's no_capacity setting changes (removed: capacity is back).

Fleet history
-------------
DescribeSpotFleetRequestHistory (Amazon EC2 API Reference,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotFleetRequestHistory.html)
answers from the events recorded here, oldest first, from StartTime on, optionally
one EventType, paged by MaxResults (1..1000, default 1000) and NextToken:
fleetRequestChange submitted and active at creation, modify_in_progress and
modify_succeeded around ModifySpotFleetRequest, cancelled_running or
cancelled_terminating at cancellation; instanceChange launched and terminated with
the instance id and, as AWS describes a launch, {"instanceType", "image",
"productDescription", "availabilityZone"} (Amazon EC2 User Guide, "Spot Fleet event
types", https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-fleet-event-types.html);
error events as above. The history outlives the fleet's cancellation (moto forgets a
fleet cancelled with its instances). An unknown id is InvalidSpotFleetRequestId.NotFound.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import datetime, timezone
from typing import Any, Iterable

from . import core, switches
from .fixes import capacity_rebalance, instance_weight, live_capacity, live_requests

PREFIX = "/_immutable/spot"

NOTICE_SECONDS = 120.0
# AWS seconds between the launch attempts of a fleet that found no capacity.
RETRY_SECONDS = 30.0
PRODUCT = "Linux/UNIX"
NO_CAPACITY = "There is no Spot capacity available that matches your request."
INTERRUPTED_STATUS = "instance-terminated-no-capacity"
INTERRUPTED_MESSAGE = (
    "Your Spot instance was terminated because there is no Spot capacity available that matches your request."
)
STATE_REASON_CODE = "Server.SpotInstanceTermination"
STATE_REASON_MESSAGE = "Server.SpotInstanceTermination: Spot instance termination"
CAPACITY_ERROR = "spotFleetRequestConfigurationInvalid"
EVENT_TYPES = ("instanceChange", "fleetRequestChange", "error", "information")

# One lock for everything below (re-entrant: a launch made while due events are
# handled records its history under the same lock).
LOCK = threading.RLock()


class Interruption:
    """One instance's interruption, on real monotonic instants (with their wall
    clock equivalents fixed when it was scheduled)."""

    def __init__(
        self, account: str, region: str, instance_id: str, fleet_id: str | None, cause: str, lead: float | None
    ) -> None:
        self.account = account
        self.region = region
        self.instance_id = instance_id
        self.fleet_id = fleet_id
        self.cause = cause
        now = switches.now()
        self.offset = time.time() - now  # wall = real + offset
        self.rebalance_at: float | None = now if lead is not None else None
        self.notice_at = now + switches.real_seconds(account, lead or 0.0)
        self.terminate_at = self.notice_at + switches.real_seconds(account, NOTICE_SECONDS)
        # Capacity Rebalancing of the instance's fleet: the replacement it launched on
        # the recommendation and, with launch-before-terminate, when the fleet
        # terminates the instance.
        self.replacement: str | None = None
        self.fleet_terminate_at: float | None = None
        # noticed, terminated, rebalanced (terminated by its fleet after the
        # replacement's delay), or gone (ended otherwise first)
        self.state = "scheduled"

    def wall(self, at: float) -> float:
        return at + self.offset

    def describe(self) -> dict[str, Any]:
        def stamp(name: str, at: float | None) -> dict[str, Any]:
            if at is None:
                return {f"{name}_time": None, f"{name}_epoch": None}
            return {f"{name}_time": iso_millis(self.wall(at)), f"{name}_epoch": round(self.wall(at), 3)}

        return {
            "instance": self.instance_id,
            "region": self.region,
            "fleet": self.fleet_id,
            "cause": self.cause,
            "state": self.state,
            **stamp("rebalance", self.rebalance_at),
            **stamp("notice", self.notice_at),
            **stamp("termination", self.terminate_at),
            "replacement": self.replacement,
            **stamp("fleet_termination", self.fleet_terminate_at),
        }


class AccountState:
    def __init__(self) -> None:
        self.interruptions: list[Interruption] = []
        self.pending: dict[str, Interruption] = {}  # instance id -> not yet over
        self.carry = 0.0
        self.last_random: float | None = None
        self.rng: random.Random | None = None
        self.rng_seed: Any = None
        self.capacity_key: str | None = None


STATE: dict[str, AccountState] = {}
# (account, region, fleet id) -> history records, oldest first
HISTORY: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
# instance id -> (account, region)
LOCATIONS: dict[str, tuple[str, str]] = {}
# What the request being served asked for, and when recorded events happened.
_CONTEXT = threading.local()


# ----------------------------------------------------------------------------------
# Time stamps
# ----------------------------------------------------------------------------------


def iso_seconds(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ----------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------


def _check(value: Any) -> str | None:
    if not isinstance(value, dict):
        return 'must be an object: {"interruptions_per_minute": x, "seed": n, "no_capacity": [...]}'
    unknown = set(value) - {"interruptions_per_minute", "seed", "no_capacity"}
    if unknown:
        return f"unknown keys {sorted(unknown)} (known: interruptions_per_minute, seed, no_capacity)"
    rate = value.get("interruptions_per_minute", 0)
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate < 0:
        return "interruptions_per_minute must be a number >= 0"
    seed = value.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        return "seed must be an integer"
    pools = value.get("no_capacity", [])
    if not isinstance(pools, list):
        return 'no_capacity must be a list of {"instance_type": ..., "zone": ...}'
    for pool in pools:
        if (
            not isinstance(pool, dict)
            or not isinstance(pool.get("instance_type"), str)
            or not pool["instance_type"]
            or set(pool) - {"instance_type", "zone"}
            or not isinstance(pool.get("zone", ""), str)
        ):
            return f'no_capacity entries are {{"instance_type": "t3.small", "zone": "eu-west-1a"}} (zone optional): {pool!r}'
    return None


def settings_of(account: str) -> dict[str, Any]:
    value = switches.setting(account, "spot")
    return value if isinstance(value, dict) else {}


# ----------------------------------------------------------------------------------
# Moto's objects
# ----------------------------------------------------------------------------------


def account_regions(account: str) -> list[tuple[str, Any]]:
    """The account's EC2 backends that exist (none is created here)."""
    from moto.ec2.models import ec2_backends

    regions = dict.get(ec2_backends, account)
    return list(dict.items(regions)) if regions is not None else []


def backend_of(account: str, region: str) -> Any:
    from moto.ec2.models import ec2_backends

    regions = dict.get(ec2_backends, account)
    return dict.get(regions, region) if regions is not None else None


def locate(instance_id: str, account: str | None = None) -> tuple[str, str, Any, Any] | None:
    """(account, region, backend, instance) of an instance, in `account` or any."""
    from moto.ec2.models import ec2_backends

    known = LOCATIONS.get(instance_id)
    if known and (account is None or known[0] == account):
        backend = backend_of(*known)
        instance = backend.get_instance_by_id(instance_id) if backend is not None else None
        if instance is not None:
            return known[0], known[1], backend, instance
    accounts = [account] if account is not None else list(dict.keys(ec2_backends))
    for owner in accounts:
        for region, backend in account_regions(owner):
            instance = backend.get_instance_by_id(instance_id)
            if instance is not None:
                LOCATIONS[instance_id] = (owner, region)
                return owner, region, backend, instance
    return None


def fleet_type(fleet: Any) -> str:
    return str(fleet.__dict__.get("_immutable_type", "maintain"))


def spec_zone(fleet: Any, spec: Any) -> str:
    backend = fleet.ec2_backend
    if spec.subnet_id:
        try:
            return str(backend.get_subnet(spec.subnet_id).availability_zone)
        except Exception:  # noqa: BLE001 - an unknown subnet fails the launch in moto itself
            pass
    return f"{backend.region_name}a"


def blocked(account: str, fleet: Any, spec: Any) -> bool:
    zone = None
    for pool in settings_of(account).get("no_capacity", []):
        if pool["instance_type"] != spec.instance_type:
            continue
        if not pool.get("zone"):
            return True
        zone = zone or spec_zone(fleet, spec)
        if pool["zone"] == zone:
            return True
    return False


def interruption_behaviour(backend: Any, instance: Any) -> str:
    fleet_id = getattr(instance, "_spot_fleet_id", None)
    fleet = backend.spot_fleet_requests.get(fleet_id) if fleet_id else None
    if fleet is not None:
        return str(fleet.instance_interruption_behaviour or "terminate")
    request = spot_request_of(backend, instance)
    if request is not None:
        return str(request.instance_interruption_behaviour or "terminate")
    return "terminate"


def spot_request_of(backend: Any, instance: Any) -> Any:
    for request in list(backend.spot_instance_requests.values()):
        if getattr(request, "instance", None) is instance:
            return request
    return None


def launch_description(instance: Any) -> str:
    return json.dumps(
        {
            "instanceType": instance.instance_type,
            "image": instance.image_id,
            "productDescription": PRODUCT,
            "availabilityZone": instance.placement.zone,
        },
        separators=(",", ":"),
    )


# ----------------------------------------------------------------------------------
# Fleet history
# ----------------------------------------------------------------------------------


def record(
    account: str,
    region: str,
    fleet_id: str,
    event_type: str,
    sub_type: str,
    description: str | None = None,
    instance_id: str | None = None,
    known_only: bool = False,
) -> None:
    with LOCK:
        key = (account, region, fleet_id)
        if known_only and key not in HISTORY:
            return
        when = getattr(_CONTEXT, "when", None) or time.time()
        information: dict[str, str] = {"EventSubType": sub_type}
        if description is not None:
            information["EventDescription"] = description
        if instance_id is not None:
            information["InstanceId"] = instance_id
        HISTORY.setdefault(key, []).append(
            {
                "Timestamp": datetime.fromtimestamp(when, timezone.utc),
                "EventType": event_type,
                "EventInformation": information,
            }
        )


def capacity_error(account: str, region: str, fleet: Any, spec: Any) -> None:
    record(
        account, region, fleet.id, "error", CAPACITY_ERROR,
        f"{spec.instance_type}, {spec.image_id}, {PRODUCT}: {NO_CAPACITY}",
    )


# ----------------------------------------------------------------------------------
# Interruptions and the timed events of an account
# ----------------------------------------------------------------------------------


def schedule(account: str, region: str, instance: Any, cause: str, lead: float | None) -> Interruption:
    state = STATE.setdefault(account, AccountState())
    interruption = Interruption(account, region, instance.id, getattr(instance, "_spot_fleet_id", None), cause, lead)
    state.interruptions.append(interruption)
    state.pending[instance.id] = interruption
    LOCATIONS[instance.id] = (account, region)
    if interruption.rebalance_at is not None:
        rebalance(interruption, instance)
    if interruption.notice_at <= switches.now():
        post_notice(interruption)
    return interruption


def rebalance(interruption: Interruption, instance: Any) -> None:
    """The fleet's Capacity Rebalancing, as the recommendation is posted."""
    backend = backend_of(interruption.account, interruption.region)
    fleet = backend.spot_fleet_requests.get(interruption.fleet_id) if interruption.fleet_id else None
    settings = capacity_rebalance(fleet) if fleet is not None else None
    if not settings or fleet.state != "active" or fleet_type(fleet) != "maintain":
        return
    before = {r.instance.id for r in fleet.spot_requests if getattr(r, "instance", None) is not None}
    fleet.create_spot_requests(instance_weight(fleet, instance))
    launched = [
        r.instance.id for r in fleet.spot_requests
        if getattr(r, "instance", None) is not None and r.instance.id not in before
    ]
    interruption.replacement = launched[0] if launched else None
    if launched and settings.get("ReplacementStrategy") == "launch-before-terminate":
        delay = float(settings.get("TerminationDelay") or 0)
        interruption.fleet_terminate_at = switches.now() + switches.real_seconds(interruption.account, delay)


def terminate_by_fleet(interruption: Interruption) -> None:
    """Launch-before-terminate: the fleet terminates the instance after the delay."""
    backend = backend_of(interruption.account, interruption.region)
    instance = backend.get_instance_by_id(interruption.instance_id) if backend is not None else None
    if instance is None or instance.state not in ("pending", "running"):
        finish(interruption, "gone")
        return
    _CONTEXT.when = interruption.wall(interruption.fleet_terminate_at or switches.now())
    try:
        instance.terminate()
    finally:
        _CONTEXT.when = None
    leave_target_groups(interruption.account, interruption.region, instance.id)
    finish(interruption, "rebalanced")


def post_notice(interruption: Interruption) -> None:
    interruption.state = "noticed"
    backend = backend_of(interruption.account, interruption.region)
    instance = backend.get_instance_by_id(interruption.instance_id) if backend is not None else None
    if instance is None or instance.state != "running":
        finish(interruption, "gone")
        return
    request = spot_request_of(backend, instance)
    if request is not None:
        request._status_code = INTERRUPTED_STATUS
        request.status_message = INTERRUPTED_MESSAGE
        request.state = "open" if request.type == "persistent" else "closed"
        request.__dict__["_immutable_updated"] = iso_millis(interruption.wall(interruption.notice_at))


def terminate(interruption: Interruption) -> None:
    from moto.ec2.models.instances import StateReason

    backend = backend_of(interruption.account, interruption.region)
    instance = backend.get_instance_by_id(interruption.instance_id) if backend is not None else None
    if instance is None or instance.state != "running":
        finish(interruption, "gone")
        return
    when = interruption.wall(interruption.terminate_at)
    _CONTEXT.when = when
    try:
        instance.terminate()
    finally:
        _CONTEXT.when = None
    instance._reason = f"Service initiated ({datetime.fromtimestamp(when, timezone.utc):%Y-%m-%d %H:%M:%S} GMT)"
    instance.state_reason = StateReason(STATE_REASON_MESSAGE, STATE_REASON_CODE)
    leave_target_groups(interruption.account, interruption.region, instance.id)
    finish(interruption, "terminated")


def join_target_groups(fleet: Any, instance_ids: list[str]) -> None:
    """Instances a fleet launched join the target groups of its load balancer
    configuration: "Spot Fleet registers the running Spot Instances with the specified
    Classic Load Balancers and target groups" (Amazon EC2 API Reference,
    "LoadBalancersConfig", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LoadBalancersConfig.html).
    Moto ignores that configuration; this covers the fleet's first instances and every
    replacement it launches."""
    groups = fleet.__dict__.get("_immutable_target_groups") or []
    if not groups or not instance_ids:
        return
    from moto.elbv2.models import elbv2_backends

    backend = fleet.ec2_backend
    regions = dict.get(elbv2_backends, backend.account_id)
    service = dict.get(regions, backend.region_name) if regions is not None else None
    if service is None:
        return
    for arn in groups:
        group = service.target_groups.get(arn)
        if group is None:
            continue  # a group deleted since: AWS reports it in the fleet's history
        try:
            group.register([{"Id": instance_id} for instance_id in instance_ids])
        except Exception as e:  # noqa: BLE001 - an instance not running yet is registered by the next launch's caller
            core.note(f"fleet {fleet.id}: registering {instance_ids} in {arn}: {e}")


def leave_target_groups(account: str, region: str, instance_id: str) -> None:
    """A terminated instance leaves its target groups (and Auto Scaling groups)."""
    for module, name in (("moto.elbv2", "elbv2_backends"), ("moto.autoscaling", "autoscaling_backends")):
        backends = getattr(__import__(module, fromlist=[name]), name)
        regions = dict.get(backends, account)
        service = dict.get(regions, region) if regions is not None else None
        if service is not None:
            service.notify_terminate_instances([instance_id])


def finish(interruption: Interruption, state: str) -> None:
    interruption.state = state
    own = STATE.get(interruption.account)
    if own is not None and own.pending.get(interruption.instance_id) is interruption:
        own.pending.pop(interruption.instance_id)


def running_spot_instances(account: str, state: AccountState) -> list[tuple[str, Any, Any]]:
    found = []
    for region, backend in account_regions(account):
        for instance in backend.all_instances():
            if (
                instance.lifecycle == "spot"
                and instance.state == "running"
                and instance.id not in state.pending
                and interruption_behaviour(backend, instance) == "terminate"
            ):
                found.append((region, backend, instance))
    found.sort(key=lambda f: f[2].id)
    return found


def random_interruptions(account: str, state: AccountState, settings: dict[str, Any], now: float) -> None:
    rate = float(settings.get("interruptions_per_minute", 0) or 0)
    if rate <= 0:
        state.last_random, state.carry = None, 0.0
        return
    if state.last_random is None:
        state.last_random = now
        return
    elapsed = switches.aws_seconds(account, now - state.last_random)
    state.last_random = now
    candidates = running_spot_instances(account, state)
    if not candidates:
        state.carry = 0.0
        return
    state.carry += rate * len(candidates) * elapsed / 60.0
    count = min(int(state.carry), len(candidates))
    state.carry = min(max(state.carry - count, 0.0), 0.999999)
    if not count:
        return
    seed = settings.get("seed", 0)
    if state.rng is None or state.rng_seed != seed:
        state.rng, state.rng_seed = random.Random(f"{seed}:{account}"), seed
    for region, _, instance in state.rng.sample(candidates, count):
        schedule(account, region, instance, "random", None)


def replenish(account: str, now: float, capacity_changed: bool) -> None:
    """Active maintain fleets below their target launch the difference."""
    for _, backend in account_regions(account):
        for fleet in list(backend.spot_fleet_requests.values()):
            if fleet.state != "active" or fleet_type(fleet) != "maintain":
                continue
            live = live_capacity(fleet)
            missing = float(fleet.target_capacity) - live
            if missing <= 0:
                fleet.__dict__["_immutable_short"] = False
                continue
            if now < fleet.__dict__.get("_immutable_retry_at", 0.0) and not capacity_changed:
                continue
            fleet.create_spot_requests(missing)


def tick(account: str) -> None:
    """Makes the account's due events happen: random interruptions, notices,
    terminations, fleet replacements and retries."""
    with LOCK:
        settings = settings_of(account)
        state = STATE.get(account)
        if state is None:
            if not settings:
                return
            state = STATE[account] = AccountState()
        now = switches.now()
        capacity_key = json.dumps(settings.get("no_capacity", []), sort_keys=True)
        capacity_changed = capacity_key != state.capacity_key
        state.capacity_key = capacity_key
        random_interruptions(account, state, settings, now)
        for interruption in list(state.pending.values()):
            fleet_at = interruption.fleet_terminate_at
            if fleet_at is not None and now >= fleet_at and fleet_at < interruption.terminate_at:
                terminate_by_fleet(interruption)
                continue
            if interruption.state == "scheduled" and now >= interruption.notice_at:
                post_notice(interruption)
            if interruption.state == "noticed" and now >= interruption.terminate_at:
                terminate(interruption)
        replenish(account, now, capacity_changed)


def events(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    # Accounts with settings are ticked by ``switches``; an account that only asked
    # for an interruption is ticked here.
    if account in STATE and account not in switches.ACCOUNTS:
        tick(account)
    return following(environ, start_response)


# ----------------------------------------------------------------------------------
# Control paths
# ----------------------------------------------------------------------------------


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    params = core.query(environ)
    account = params.get("account", "")

    def answer(status: str, payload: object) -> list[bytes]:
        return core.answer(start_response, status, payload)

    if not account:
        return answer("400 Bad Request", {"error": "the account query parameter is required"})
    if path == PREFIX and method == "GET":
        switches.tick(account)
        with LOCK:
            own = STATE.get(account)
            listed = [i.describe() for i in own.interruptions] if own else []
            return answer("200 OK", {"now": iso_millis(time.time()), "interruptions": listed})
    if path == PREFIX + "/interrupt" and method == "POST":
        instance_id = params.get("instance", "")
        lead: float | None = None
        if "rebalance_lead" in params:
            try:
                lead = float(params["rebalance_lead"])
            except ValueError:
                lead = -1.0
            if lead < 0:
                return answer("400 Bad Request", {"error": "rebalance_lead must be AWS seconds >= 0"})
        switches.tick(account)
        with LOCK:
            found = locate(instance_id, account) if instance_id else None
            if found is None:
                return answer("404 Not Found", {"error": f"no instance {instance_id!r} in account {account}"})
            _, region, backend, instance = found
            if instance.lifecycle != "spot":
                return answer("400 Bad Request", {"error": f"{instance_id} is not a Spot Instance"})
            behaviour = interruption_behaviour(backend, instance)
            if behaviour != "terminate":
                return answer(
                    "400 Bad Request",
                    {"error": f"{instance_id} is set to {behaviour} on interruption; only terminate is emulated"},
                )
            if instance.state != "running":
                return answer("409 Conflict", {"error": f"{instance_id} is {instance.state}"})
            own = STATE.get(account)
            if own is not None and instance_id in own.pending:
                return answer(
                    "409 Conflict",
                    {"error": f"{instance_id} is being interrupted", "interruption": own.pending[instance_id].describe()},
                )
            interruption = schedule(account, region, instance, "request", lead)
            return answer("200 OK", interruption.describe())
    return answer("404 Not Found", {"error": f"no {method} {path}"})


# ----------------------------------------------------------------------------------
# Moto: fleet types, pools, capacity, activity, history
# ----------------------------------------------------------------------------------


def expand_overrides(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One launch template configuration per override: each override is a pool."""
    expanded = []
    for config in configs:
        overrides = config.get("Overrides") or []
        if len(overrides) <= 1:
            expanded.append(config)
        else:
            expanded.extend({**config, "Overrides": [override]} for override in overrides)
    return expanded


def patch_fleets() -> None:
    import moto.ec2.models.spot_requests as spot_models
    import moto.ec2.responses.spot_fleets as fleet_responses

    Fleet = spot_models.SpotFleetRequest

    original_request = fleet_responses.SpotFleets.request_spot_fleet

    def request_spot_fleet(self):  # type: ignore[no-untyped-def]
        config = self._get_param("SpotFleetRequestConfig", {}) or {}
        _CONTEXT.fleet_type = config.get("Type") or "maintain"
        groups = ((config.get("LoadBalancersConfig") or {}).get("TargetGroupsConfig") or {}).get("TargetGroups")
        _CONTEXT.target_groups = [g.get("Arn") for g in groups or [] if isinstance(g, dict) and g.get("Arn")]
        try:
            return original_request(self)
        finally:
            _CONTEXT.fleet_type = None
            _CONTEXT.target_groups = None

    fleet_responses.SpotFleets.request_spot_fleet = request_spot_fleet

    original_init = Fleet.__init__

    def fleet_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("launch_template_config"):
            kwargs["launch_template_config"] = expand_overrides(kwargs["launch_template_config"])
        backend = kwargs.get("ec2_backend", args[0] if args else None)
        fleet_id = kwargs.get("spot_fleet_request_id", args[2] if len(args) > 2 else None)
        self.__dict__["_immutable_type"] = getattr(_CONTEXT, "fleet_type", None) or "maintain"
        self.__dict__["_immutable_target_groups"] = list(getattr(_CONTEXT, "target_groups", None) or [])
        key = (backend.account_id, backend.region_name, fleet_id)
        with LOCK:
            record(*key, "fleetRequestChange", "submitted")
            record(*key, "fleetRequestChange", "active")
            try:
                original_init(self, *args, **kwargs)
            except Exception:
                HISTORY.pop(key, None)
                raise

    Fleet.__init__ = fleet_init

    original_create = Fleet.create_spot_requests

    def create_spot_requests(self, weight_to_add):  # type: ignore[no-untyped-def]
        account, region = self.ec2_backend.account_id, self.ec2_backend.region_name
        with LOCK:
            empty = (
                [s for s in self.launch_specs if blocked(account, self, s)]
                if weight_to_add > 0 and self.launch_specs and settings_of(account).get("no_capacity")
                else []
            )
            if not empty:
                self.__dict__["_immutable_short"] = False
                return original_create(self, weight_to_add)
            wanted, _ = self.get_launch_spec_counts(weight_to_add)
            for spec in wanted:
                if spec in empty:
                    capacity_error(account, region, self, spec)
            if fleet_type(self) == "request":
                usable = [s for s in wanted if s not in empty]
                weight = weight_to_add - sum(
                    count * s.weighted_capacity for s, count in wanted.items() if s in empty
                )
            else:
                usable = [s for s in self.launch_specs if s not in empty]
                weight = weight_to_add
            if usable and weight > 0:
                every = self.launch_specs
                self.launch_specs = usable
                try:
                    original_create(self, weight)
                finally:
                    self.launch_specs = every
            short = not usable or weight < weight_to_add
            self.__dict__["_immutable_short"] = short
            if short:
                STATE.setdefault(account, AccountState())
                self.__dict__["_immutable_retry_at"] = switches.now() + switches.real_seconds(
                    account, RETRY_SECONDS
                )
            return None

    Fleet.create_spot_requests = create_spot_requests

    launching = Fleet.create_spot_requests

    def create_and_register(self, weight_to_add):  # type: ignore[no-untyped-def]
        before = {r.instance.id for r in live_requests(self)}
        result = launching(self, weight_to_add)
        launched = [r.instance.id for r in live_requests(self) if r.instance.id not in before]
        join_target_groups(self, launched)
        return result

    Fleet.create_spot_requests = create_and_register

    def activity_status(self):  # type: ignore[no-untyped-def]
        if live_capacity(self) >= float(self.target_capacity):
            return "fulfilled"
        return "error" if self.__dict__.get("_immutable_short") else "pending_fulfillment"

    Fleet.activity_status = property(activity_status)

    original_config = Fleet.spot_fleet_request_config

    def spot_fleet_request_config(self):  # type: ignore[no-untyped-def]
        config = original_config.fget(self)
        config["Type"] = fleet_type(self)
        return config

    Fleet.spot_fleet_request_config = property(spot_fleet_request_config)

    original_cancel = spot_models.SpotRequestBackend.cancel_spot_fleet_requests

    def cancel_spot_fleet_requests(self, spot_fleet_request_ids, terminate_instances):  # type: ignore[no-untyped-def]
        sub_type = "cancelled_terminating" if terminate_instances else "cancelled_running"
        for fleet_id in spot_fleet_request_ids:
            if fleet_id in self.spot_fleet_requests:
                record(self.account_id, self.region_name, fleet_id, "fleetRequestChange", sub_type, known_only=True)
        return original_cancel(self, spot_fleet_request_ids, terminate_instances)

    spot_models.SpotRequestBackend.cancel_spot_fleet_requests = cancel_spot_fleet_requests

    original_modify = spot_models.SpotRequestBackend.modify_spot_fleet_request

    def modify_spot_fleet_request(self, spot_fleet_request_id, target_capacity, terminate_instances):  # type: ignore[no-untyped-def]
        key = (self.account_id, self.region_name, spot_fleet_request_id)
        record(*key, "fleetRequestChange", "modify_in_progress", known_only=True)
        result = original_modify(self, spot_fleet_request_id, target_capacity, terminate_instances)
        record(*key, "fleetRequestChange", "modify_succeeded", known_only=True)
        return result

    spot_models.SpotRequestBackend.modify_spot_fleet_request = modify_spot_fleet_request


def patch_instances() -> None:
    import moto.ec2.models.instances as instance_models
    import moto.ec2.models.spot_requests as spot_models

    original_launch = spot_models.SpotInstanceRequest.launch_instance

    def launch_instance(self):  # type: ignore[no-untyped-def]
        instance = original_launch(self)
        if self.spot_fleet_id:
            backend = self.ec2_backend
            record(
                backend.account_id, backend.region_name, self.spot_fleet_id, "instanceChange", "launched",
                launch_description(instance), instance.id, known_only=True,
            )
        return instance

    spot_models.SpotInstanceRequest.launch_instance = launch_instance

    def status(self):  # type: ignore[no-untyped-def]
        return {
            "Code": self._status_code,
            "Message": self.status_message,
            "UpdateTime": self.__dict__.get("_immutable_updated", "2015-01-01T00:00:00.000Z"),
        }

    spot_models.SpotInstanceRequest.status = property(status)

    original_terminate = instance_models.Instance.terminate

    def terminate_instance(self):  # type: ignore[no-untyped-def]
        was = self._state.name
        result = original_terminate(self)
        fleet_id = getattr(self, "_spot_fleet_id", None)
        if fleet_id and was != "terminated":
            backend = self.ec2_backend
            record(
                backend.account_id, backend.region_name, fleet_id, "instanceChange", "terminated",
                launch_description(self), self.id, known_only=True,
            )
        return result

    instance_models.Instance.terminate = terminate_instance


def patch_history() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    import moto.ec2.responses.spot_fleets as fleet_responses

    def describe_spot_fleet_request_history(self):  # type: ignore[no-untyped-def]
        fleet_id = self._get_param("SpotFleetRequestId") or ""
        start_text = self._get_param("StartTime")
        event_type = self._get_param("EventType")
        if not start_text:
            raise EC2ClientError("MissingParameter", "The request must contain the parameter startTime")
        try:
            start = parse_time(str(start_text))
        except ValueError:
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{start_text}' for startTime") from None
        if event_type is not None and event_type not in EVENT_TYPES:
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{event_type}' for eventType")
        limit = self._get_int_param("MaxResults") or 1000
        if not 1 <= limit <= 1000:
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{limit}' for maxResults")
        token = self._get_param("NextToken")
        offset = int(token) if token and str(token).isdigit() else 0
        key = (self.current_account, self.region, fleet_id)
        with LOCK:
            records = HISTORY.get(key)
            if records is None and fleet_id in self.ec2_backend.spot_fleet_requests:
                records = []
            if records is None:
                raise EC2ClientError(
                    "InvalidSpotFleetRequestId.NotFound", f"The spot fleet request ID '{fleet_id}' does not exist"
                )
            chosen = [
                r for r in records
                if r["Timestamp"] >= start and (event_type is None or r["EventType"] == event_type)
            ]
        page = chosen[offset:offset + limit]
        result: dict[str, Any] = {
            "SpotFleetRequestId": fleet_id,
            "StartTime": start,
            "HistoryRecords": page,
        }
        if offset + limit < len(chosen):
            result["NextToken"] = str(offset + limit)
        else:
            result["LastEvaluatedTime"] = datetime.now(timezone.utc)
        return ActionResult(result)

    fleet_responses.SpotFleets.describe_spot_fleet_request_history = describe_spot_fleet_request_history


def install() -> None:
    switches.declare("spot", {}, _check)
    switches.on_tick(tick)
    patch_fleets()
    patch_instances()
    patch_history()
    core.route(PREFIX, serve)
    core.wrap(core.RANK_EVENTS, "Spot interruptions and fleets", events)
