"""Target health and draining of ELBv2 target groups.

Moto reports every registered instance target as healthy the instant it is
registered, and forgets a deregistered target at once. Two modes, per account
(``switches``: ``target_health``):

"instant" (the default): health follows tags, so that failed rollouts can be tested.
  - an instance tagged immutable-test:health=<state>, or one whose AMI carries that
    tag, reports <state> (unhealthy, initial, ...) with the reason from
    immutable-test:health-reason (default Target.ResponseCodeMismatch for unhealthy);
  - an instance that is not running reports unused / Target.InvalidState;
  - anything else is healthy at once, and deregistration is immediate.

"timed": health as an Application Load Balancer computes it, on the account's scaled
clock. AWS: "The load balancer sends a health check request to each registered
target every HealthCheckIntervalSeconds seconds ... When the health checks exceed
HealthyThresholdCount consecutive successes, the load balancer puts the target back
in service. When the health checks exceed UnhealthyThresholdCount consecutive
failures, the load balancer takes the target out of service" (Elastic Load Balancing,
Application Load Balancers, "Health checks for your target groups",
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html),
with the target states and reason codes listed there (initial:
Elb.RegistrationInProgress, Elb.InitialHealthChecking; unhealthy:
Target.ResponseCodeMismatch, Target.Timeout, Target.FailedHealthChecks; draining:
Target.DeregistrationInProgress; unused: Target.NotRegistered, Target.InvalidState).
  - a registered target is checked every HealthCheckIntervalSeconds from its
    registration (the first check one interval after it); it is `initial` until
    HealthyThresholdCount consecutive checks pass (healthy) or UnhealthyThresholdCount
    consecutive checks fail (unhealthy), and moves between healthy and unhealthy by
    the same thresholds;
  - a check passes once the instance has booted (a boot time per instance, drawn
    from ``boot_seconds`` by a generator seeded with the instance id, or
    immutable-test:boot-seconds on the instance) unless the instance or its AMI is
    tagged immutable-test:health=unhealthy (then it fails with the tagged reason);
    before boot a check times out (Target.Timeout). Other tagged states are reported
    as tagged;
  - DeregisterTargets (or the instance's termination) puts the target in `draining`
    for the group's deregistration_delay.timeout_seconds (default 300): AWS "Elastic
    Load Balancing stops sending requests to targets that are deregistering ... The
    initial state of a deregistering target is draining. After the deregistration
    delay elapses, the deregistration process completes and the state of the target
    is unused" (same guide, "Deregistration delay",
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/edit-target-group-attributes.html#deregistration-delay).
    DescribeTargetHealth lists draining targets with the registered ones.
"""

from __future__ import annotations

import random
from typing import Any

from . import core, switches

HEALTH_TAG = "immutable-test:health"
HEALTH_REASON_TAG = "immutable-test:health-reason"
BOOT_TAG = "immutable-test:boot-seconds"
DEFAULT_REASONS = {
    "unhealthy": ("Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"),
    "initial": ("Elb.RegistrationInProgress", "Target registration is in progress"),
}


def account_of(group: Any) -> str:
    # arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
    parts = str(getattr(group, "arn", "")).split(":")
    return parts[4] if len(parts) > 5 else ""


def timed(group: Any) -> bool:
    return switches.setting(account_of(group), "target_health") == "timed"


def tagged(ec2_backend: Any, instance: Any) -> dict[str, str]:
    """The instance's tags, over its AMI's health tags."""
    tags: dict[str, str] = {}
    image_tags = dict(ec2_backend.tags.get(getattr(instance, "image_id", ""), {}))
    for key in (HEALTH_TAG, HEALTH_REASON_TAG):
        if key in image_tags:
            tags[key] = image_tags[key]
    tags.update(ec2_backend.tags.get(instance.id, {}))
    return tags


def boot_seconds(account: str, instance: Any, tags: dict[str, str]) -> float:
    if BOOT_TAG in tags:
        try:
            return float(tags[BOOT_TAG])
        except ValueError:
            pass
    low, high = switches.setting(account, "boot_seconds")
    return random.Random(instance.id).uniform(float(low), float(high))


def launched_at(instance: Any) -> float:
    return getattr(instance, "_immutable_launched", 0.0)


def checks(group: Any, account: str, registered: float, instance: Any, tags: dict[str, str], at: float):  # type: ignore[no-untyped-def]
    """Replays the health checks of a target registered at `registered` up to `at`:
    (state, checks made, whether the last failed check failed for want of boot)."""
    interval = switches.real_seconds(account, float(group.health_check_interval_seconds))
    healthy_after = int(group.healthy_threshold_count)
    unhealthy_after = int(group.unhealthy_threshold_count)
    booted = launched_at(instance) + switches.real_seconds(account, boot_seconds(account, instance, tags))
    broken = tags.get(HEALTH_TAG) == "unhealthy"
    state, passes, fails, made, timeout = "initial", 0, 0, 0, False
    when = registered + interval
    while when <= at:
        made += 1
        passed = when >= booted and not broken
        if passed:
            passes, fails = passes + 1, 0
            if state != "healthy" and passes >= healthy_after:
                state = "healthy"
        else:
            passes, fails = 0, fails + 1
            timeout = when < booted
            if state != "unhealthy" and fails >= unhealthy_after:
                state = "unhealthy"
        when += interval
    return state, made, timeout


class InstancesById:
    """An EC2 backend whose get_instance_by_id answers from one scan of the instances
    (for the length of one request); everything else is the backend's."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self._by_id: dict[str, Any] | None = None

    def get_instance_by_id(self, instance_id: str) -> Any:
        if self._by_id is None:
            self._by_id = {}
            for reservation in self._backend.all_reservations():
                for instance in reservation.instances:
                    self._by_id.setdefault(instance.id, instance)
        return self._by_id.get(instance_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def install() -> None:
    import moto.ec2.models.instances as instance_models
    import moto.elbv2.models as elbv2_models

    FakeHealthStatus = elbv2_models.FakeHealthStatus
    FakeTargetGroup = elbv2_models.FakeTargetGroup

    original_init = instance_models.Instance.__init__

    def instance_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, **kwargs)
        self._immutable_launched = switches.now()

    instance_models.Instance.__init__ = instance_init

    def registered(group: Any) -> dict[str, float]:
        return group.__dict__.setdefault("_immutable_registered", {})

    def draining(group: Any) -> dict[str, tuple[float, dict[str, Any]]]:
        """target id -> (real instant the deregistration completes, target)."""
        found = group.__dict__.setdefault("_immutable_draining", {})
        at = switches.now()
        for target_id in [t for t, (until, _) in found.items() if until <= at]:
            _, target = found.pop(target_id)
            group.deregistered_targets[target_id] = target
        return found

    def start_draining(group: Any, target: dict[str, Any]) -> None:
        delay = float(group.attributes.get("deregistration_delay.timeout_seconds", 300))
        until = switches.now() + switches.real_seconds(account_of(group), delay)
        draining(group)[target["Id"]] = (until, target)
        registered(group).pop(target["Id"], None)

    original_register = FakeTargetGroup.register

    def register(self, targets):  # type: ignore[no-untyped-def]
        known = set(self.targets)
        original_register(self, targets)
        at = switches.now()
        for target in targets:
            target_id = target["Id"]
            # Registering a draining target puts it back in service as a new target.
            was_draining = draining(self).pop(target_id, None) is not None
            if target_id not in known or was_draining:
                registered(self)[target_id] = at

    FakeTargetGroup.register = register

    original_deregister = FakeTargetGroup.deregister

    def deregister(self, targets):  # type: ignore[no-untyped-def]
        if not timed(self):
            return original_deregister(self, targets)
        for target in targets:
            if target["Id"] in draining(self):
                continue  # already deregistering: AWS accepts the call
            held = self.targets.pop(target["Id"], None)
            if not held:
                raise elbv2_models.InvalidTargetError()
            start_draining(self, held)
        return None

    FakeTargetGroup.deregister = deregister

    original_terminated = FakeTargetGroup.deregister_terminated_instances

    def deregister_terminated_instances(self, instance_ids):  # type: ignore[no-untyped-def]
        if not timed(self):
            return original_terminated(self, instance_ids)
        for target_id in list(self.targets):
            if target_id in instance_ids:
                start_draining(self, self.targets.pop(target_id))
        return None

    FakeTargetGroup.deregister_terminated_instances = deregister_terminated_instances

    original_health_for = FakeTargetGroup.health_for

    def health_for(self, target, ec2_backend):  # type: ignore[no-untyped-def]
        target_id = target.get("Id", "")
        if timed(self):
            pending = draining(self).get(target_id)
            if pending is not None:
                return FakeHealthStatus(
                    target_id, pending[1].get("Port", self.port), self.health_check_port, "draining",
                    "Target.DeregistrationInProgress", "Target deregistration is in progress",
                )
        status = original_health_for(self, target, ec2_backend)
        if status.status != "healthy" or not target_id.startswith("i-"):
            return status
        try:
            instance = ec2_backend.get_instance_by_id(target_id)
        except Exception:  # noqa: BLE001 - unknown ids keep moto's answer
            return status
        if instance is None:
            return status
        state = getattr(instance, "state", "running")
        if state != "running":
            return FakeHealthStatus(
                target_id, status.port, self.health_check_port, "unused",
                "Target.InvalidState", f"Target is in the {state} state",
            )
        tags = tagged(ec2_backend, instance)
        wanted = tags.get(HEALTH_TAG)
        if timed(self) and wanted in (None, "healthy", "unhealthy"):
            account = account_of(self)
            since = registered(self).get(target_id, switches.now())
            now, made, timeout = checks(self, account, since, instance, tags, switches.now())
            if now == "healthy":
                return status
            if now == "initial":
                reason, description = (
                    ("Elb.InitialHealthChecking", "Initial health checks in progress")
                    if made else DEFAULT_REASONS["initial"]
                )
            elif timeout:
                reason, description = "Target.Timeout", "Request timed out"
            else:
                reason, description = DEFAULT_REASONS["unhealthy"]
                reason = tags.get(HEALTH_REASON_TAG, reason)
            return FakeHealthStatus(target_id, status.port, self.health_check_port, now, reason, description)
        if not wanted or wanted == "healthy":
            return status
        reason, description = DEFAULT_REASONS.get(wanted, ("Target.FailedHealthChecks", "Health checks failed"))
        reason = tags.get(HEALTH_REASON_TAG, reason)
        return FakeHealthStatus(target_id, status.port, self.health_check_port, wanted, reason, description)

    FakeTargetGroup.health_for = health_for

    original_describe = elbv2_models.ELBv2Backend.describe_target_health

    def describe_target_health(self, target_group_arn, targets):  # type: ignore[no-untyped-def]
        group = self.target_groups.get(target_group_arn)
        if group is None:
            return original_describe(self, target_group_arn, targets)
        if not targets:
            targets = list(group.targets.values())
            if timed(group):
                targets += [t for _, t in draining(group).values()]
        # Moto looks the EC2 backend up once per target, each time under a lock global
        # to the server, and each target's instance up by scanning every instance of
        # the region: a group of 1,000 targets cost a million comparisons per call.
        # Once per call here, and the instances by id from one scan.
        ec2_backend = InstancesById(self.ec2_backend)
        return [group.health_for(target, ec2_backend) for target in targets]

    elbv2_models.ELBv2Backend.describe_target_health = describe_target_health
