"""API request throttling of EC2 and ELBv2: AWS's per-account token buckets, switched on
per account (``switches``: ``throttling``) and run on the account's scaled clock.

EC2. AWS: "Amazon EC2 throttles EC2 API requests for each AWS account on a per-Region
basis", with the token bucket algorithm: "each API is evaluated individually ... Each
request that you make removes one token from the API's bucket", and "If the bucket is
below its maximum capacity, a set number of tokens is added back to it every second";
a request without a token fails with the RequestLimitExceeded error code (Amazon EC2
Developer Guide, "Request throttling for the Amazon EC2 API",
https://docs.aws.amazon.com/ec2/latest/devguide/ec2-api-throttling.html). Its tables
"Request token bucket sizes and refill rates" and "Resource token bucket sizes and
refill rates" give (bucket maximum capacity / refill per second):
  - non-mutating actions (Describe*, List*, Search*, Get*)             100 / 20
  - unfiltered and unpaginated non-mutating actions: DescribeInstances,
    DescribeInstanceStatus, DescribeNetworkInterfaces, DescribeSecurityGroups,
    DescribeSnapshots, DescribeSpotInstanceRequests, DescribeVolumes when requested
    with neither a filter nor pagination: a smaller bucket of its own   50 / 10
  - mutating actions (all others)                                        50 / 5
  - resource-intensive actions (AuthorizeSecurityGroupIngress,
    CancelSpotInstanceRequests, CreateKeyPair, RequestSpotInstances, ...) 50 / 5
  - uncategorized actions with figures of their own, among them
    DescribeSpotFleetRequests 50 / 3, RunInstances 5 / 2, StartInstances 5 / 2,
    TerminateInstances 100 / 5, CreateTags 100 / 10 (the whole table is below);
  - resource token buckets, depleted by the number of instances a request acts on:
    RunInstances 1000 / 2, TerminateInstances 1000 / 20, StartInstances 1000 / 2,
    StopInstances 1000 / 20. "If you exceed a specific bucket limit for an API ...
    the action of the API is limited".
The console's non-mutating bucket does not apply (no request here comes from the
console). The error is answered as EC2 answers it: HTTP 503 (RequestLimitExceeded is
among the server error codes of "Error codes for the Amazon EC2 API",
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html) with the
code RequestLimitExceeded and the message "Request limit exceeded.".

ELBv2. AWS publishes its limits too: "Each ELB API version has its own buckets and
tokens", API actions "are grouped into categories. Each category has its own limits",
and "There is an account-level throttling limit that is shared across all Elastic
Load Balancing API actions. The capacity of the account-level bucket is 40 tokens and
the refill rate is 10 request tokens per second" (Elastic Load Balancing User Guide,
"Request throttling for the Elastic Load Balancing API",
https://docs.aws.amazon.com/elasticloadbalancing/latest/userguide/elb-api-throttling.html).
Its categories for ELBv2:
  - resource-intensive: CreateLoadBalancer, SetSubnets                   10 / 0.2
  - registration: RegisterTargets, DeregisterTargets                     20 / 4
  - non-mutating: Describe* (DescribeTargetHealth, DescribeTargetGroups, ...) 40 / 10
  - mutating: AddTags, CreateTargetGroup, ModifyTargetGroup, DeleteTargetGroup, ... 20 / 3
  - uncategorized trust-store and resource-policy actions (table below).
That page names the error ThrottlingException with the message "Rate exceeded"
(the name CloudTrail records). On the wire the query protocol answers HTTP 400 with
the code Throttling, type Sender: "Rate exceeded (Service: AmazonElasticLoadBalancing;
Status Code: 400; Error Code: Throttling ...)" as clients report it
(https://github.com/spinnaker/spinnaker/issues/1975,
https://github.com/kubernetes-sigs/aws-load-balancer-controller/issues/1871), and
botocore lists Throttling among the throttling error codes it retries. That is what
is answered here, in the ELBv2 namespace of the service model.

What this module does, for an account whose ``throttling`` is not false:
  - every EC2 and ELBv2 request takes one token from each of its buckets, or is refused
    without reaching moto when one of them has none (all or nothing). Other services
    (IAM, STS, CloudWatch, pricing, ...) are never throttled. The CloudWatch quotas
    page this was checked against ("CloudWatch service quotas",
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch_limits.html)
    gives request rates for the Contributor Insights actions only; without published
    figures for the alarm actions (PutMetricAlarm, DescribeAlarms, SetAlarmState),
    none is made up here;
  - EC2: a bucket per action with the figures above; the seven actions of the
    unfiltered category use their smaller bucket when the request has no Filter.N,
    MaxResults or NextToken parameter (instance ids alone are neither a filter nor
    pagination). RunInstances also takes MaxCount tokens from its resource bucket,
    Start/Stop/TerminateInstances one per InstanceId.N;
  - ELBv2: a bucket per category (shared by the category's actions, as the page
    describes "the token bucket size for non-mutating API actions is 40 tokens")
    and the account-level bucket shared by every ELBv2 action. An action the table
    does not name counts as non-mutating when it starts with Describe or Get, as
    mutating otherwise;
  - buckets start full when throttling is switched on, and whenever the setting is
    posted again (or the account's behaviour is reset). They refill as the page
    says, by whole seconds: at every whole AWS second since a bucket was first used,
    on the account's scaled clock, it gains its refill rate (fractional rates
    accumulate), up to its capacity. So a burst shorter than one AWS second gets
    exactly the bucket's capacity, and an empty bucket admits `rate` requests per
    AWS second, rate / clock_scale per real second. A change of clock_scale credits
    the time before it at the old scale;
  - ``throttling`` = {"<service>:<Action>": [bucket size, refill per AWS second], ...}
    switches the buckets on with those actions' buckets replaced: the action then
    uses a single bucket of its own with these figures instead of all of the above
    (category, account-level, unfiltered and resource buckets). Services: ec2, elbv2.
    [0, 0] refuses every call of the action; [n, 0] admits n calls and no more.

    GET  /_immutable/throttled?account=ID        -> {"ec2:DescribeInstances": 3, ...}
                                                    refusals by <service>:<Action>
    POST /_immutable/throttled/reset?account=ID  -> the counts before the reset

The request accounting (outer) counts refused requests with the others.
"""

from __future__ import annotations

import math
import threading
import uuid
from typing import Any, Iterable
from urllib.parse import parse_qs

from . import core, switches

PREFIX = "/_immutable/throttled"
SETTING = "throttling"
SERVICES = ("ec2", "elbv2")

# (bucket maximum capacity, refill per AWS second)
Figures = tuple[float, float]


def _table(text: str) -> dict[str, Figures]:
    """Parses lines of "Action capacity refill"."""
    table: dict[str, Figures] = {}
    for line in text.strip().splitlines():
        action, capacity, refill = line.split()
        table[action] = (float(capacity), float(refill))
    return table


# ----------------------------------------------------------------------------------
# EC2 ("Request throttling for the Amazon EC2 API", see above).
# ----------------------------------------------------------------------------------

EC2_NON_MUTATING: Figures = (100.0, 20.0)
EC2_NON_MUTATING_PREFIXES = ("Describe", "List", "Search", "Get")
EC2_UNFILTERED: Figures = (50.0, 10.0)
EC2_UNFILTERED_ACTIONS = frozenset(
    {
        "DescribeInstances",
        "DescribeInstanceStatus",
        "DescribeNetworkInterfaces",
        "DescribeSecurityGroups",
        "DescribeSnapshots",
        "DescribeSpotInstanceRequests",
        "DescribeVolumes",
    }
)
EC2_MUTATING: Figures = (50.0, 5.0)
EC2_RESOURCE_INTENSIVE: Figures = (50.0, 5.0)
EC2_RESOURCE_INTENSIVE_ACTIONS = frozenset(
    {
        "AcceptVpcPeeringConnection",
        "AuthorizeSecurityGroupIngress",
        "CancelSpotInstanceRequests",
        "CreateKeyPair",
        "CreateVpcPeeringConnection",
        "DeleteVpcPeeringConnection",
        "RejectVpcPeeringConnection",
        "RevokeSecurityGroupIngress",
        "RequestSpotInstances",
    }
)
EC2_UNCATEGORIZED = _table(
    """
    AcceptVpcEndpointConnections 10 1
    AdvertiseByoipCidr 1 0.1
    AssignIpv6Addresses 100 5
    AssignPrivateIpAddresses 100 5
    AssignPrivateNatGatewayAddress 10 1
    AssociateCapacityReservationBillingOwner 1 0.5
    AssociateEnclaveCertificateIamRole 10 1
    AssociateIamInstanceProfile 100 5
    AssociateNatGatewayAddress 10 1
    AttachVerifiedAccessTrustProvider 10 2
    AuthorizeClientVpnIngress 5 2
    CancelDeclarativePoliciesReport 1 1
    CopyImage 100 1
    CreateClientVpnRoute 5 2
    CreateCoipCidr 5 1
    CreateCoipPool 5 1
    CreateDefaultSubnet 1 1
    CreateDefaultVpc 1 1
    CreateLaunchTemplateVersion 100 5
    CreateNatGateway 10 1
    CreateNetworkInterface 100 5
    CreateRestoreImageTask 50 0.1
    CreateSnapshot 100 5
    CreateSnapshots 100 5
    CreateSpotDatafeedSubscription 50 3
    CreateStoreImageTask 50 0.1
    CreateSubnetCidrReservation 5 1
    CreateTags 100 10
    CreateVerifiedAccessEndpoint 20 4
    CreateVerifiedAccessGroup 10 2
    CreateVerifiedAccessInstance 10 2
    CreateVerifiedAccessTrustProvider 10 2
    CreateVolume 100 5
    CreateVpcEndpoint 4 0.3
    CreateVpcEndpointServiceConfiguration 10 1
    DeleteClientVpnRoute 5 2
    DeleteCoipCidr 5 1
    DeleteCoipPool 5 1
    DeleteCoipPoolPermission 5 1
    DeleteNatGateway 10 1
    DeleteNetworkInterface 100 5
    DeleteSnapshot 100 5
    DeleteSpotDatafeedSubscription 50 3
    DeleteSubnetCidrReservation 5 1
    DeleteQueuedReservedInstances 5 5
    DeleteTags 100 10
    DeleteVerifiedAccessEndpoint 20 4
    DeleteVerifiedAccessGroup 10 2
    DeleteVerifiedAccessInstance 10 2
    DeleteVerifiedAccessTrustProvider 10 2
    DeleteVolume 100 5
    DeleteVpcEndpoints 4 0.3
    DeleteVpcEndpointServiceConfigurations 10 1
    DeprovisionByoipCidr 1 0.1
    DeregisterImage 100 5
    DescribeAggregateIdFormat 10 10
    DescribeByoipCidrs 1 0.5
    DescribeCapacityBlockExtensionOfferings 10 0.15
    DescribeCapacityBlockOfferings 10 0.15
    DescribeDeclarativePoliciesReports 5 5
    DescribeHostReservations 5 2
    DescribeHostReservationOfferings 5 2
    DescribeIdentityIdFormat 10 10
    DescribeIdFormat 10 10
    DescribeInstanceTopology 1 1
    DescribeMovingAddresses 1 1
    DescribePrincipalIdFormat 10 10
    DescribeReservedInstancesOfferings 10 10
    DescribeSecurityGroupReferences 20 5
    DescribeSpotDatafeedSubscription 100 13
    DescribeSpotFleetInstances 100 5
    DescribeSpotFleetRequestHistory 100 5
    DescribeSpotFleetRequests 50 3
    DescribeStaleSecurityGroups 20 5
    DescribeStoreImageTasks 50 0.5
    DescribeVerifiedAccessInstanceLoggingConfigurations 10 2
    DetachVerifiedAccessTrustProvider 10 2
    DisableFastLaunch 5 2
    DisableImageBlockPublicAccess 1 0.1
    DisableSnapshotBlockPublicAccess 1 0.1
    DisassociateCapacityReservationBillingOwner 1 0.5
    DisassociateEnclaveCertificateIamRole 10 1
    DisassociateIamInstanceProfile 100 5
    DisassociateNatGatewayAddress 10 1
    EnableFastLaunch 5 2
    EnableImageBlockPublicAccess 1 0.1
    EnableSnapshotBlockPublicAccess 1 0.1
    GetAssociatedEnclaveCertificateIamRoles 10 1
    GetDeclarativePoliciesReportSummary 5 5
    GetHostReservationPurchasePreview 5 2
    ModifyImageAttribute 100 5
    ModifyInstanceMetadataDefaults 2 2
    ModifyInstanceMetadataOptions 100 5
    ModifyLaunchTemplate 100 5
    ModifyNetworkInterfaceAttribute 100 5
    ModifySnapshotAttribute 100 5
    ModifyVerifiedAccessEndpoint 20 4
    ModifyVerifiedAccessEndpointPolicy 20 4
    ModifyVerifiedAccessGroup 10 2
    ModifyVerifiedAccessGroupPolicy 20 4
    ModifyVerifiedAccessInstance 10 2
    ModifyVerifiedAccessInstanceLoggingConfiguration 10 2
    ModifyVerifiedAccessTrustProvider 10 2
    ModifyVpcEndpoint 4 0.3
    ModifyVpcEndpointServiceConfiguration 10 1
    MoveAddressToVpc 1 1
    ProvisionByoipCidr 1 0.1
    PurchaseCapacityBlock 10 0.15
    PurchaseCapacityBlockExtension 10 0.15
    PurchaseHostReservation 5 2
    PurchaseReservedInstancesOffering 5 5
    RejectVpcEndpointConnections 10 1
    RestoreAddressToClassic 1 1
    RevokeClientVpnIngress 5 2
    RunInstances 5 2
    StartDeclarativePoliciesReport 1 1
    StartInstances 5 2
    TerminateInstances 100 5
    UnassignPrivateIpAddresses 100 5
    UnassignPrivateNatGatewayAddress 10 1
    WithdrawByoipCidr 1 0.1
    """
)
# Resource token buckets: one token per instance the request acts on.
EC2_RESOURCE_BUCKETS = _table(
    """
    RunInstances 1000 2
    TerminateInstances 1000 20
    StartInstances 1000 2
    StopInstances 1000 20
    """
)

# ----------------------------------------------------------------------------------
# ELBv2 ("Request throttling for the Elastic Load Balancing API", see above).
# ----------------------------------------------------------------------------------

ELBV2_ACCOUNT: Figures = (40.0, 10.0)
# category -> (figures, actions); a category's actions share its bucket.
ELBV2_CATEGORIES: dict[str, tuple[Figures, frozenset[str]]] = {
    "resource-intensive": ((10.0, 0.2), frozenset({"CreateLoadBalancer", "SetSubnets"})),
    "registration": ((20.0, 4.0), frozenset({"RegisterTargets", "DeregisterTargets"})),
    "non-mutating": (
        (40.0, 10.0),
        frozenset(
            {
                "DescribeAccountLimits",
                "DescribeCapacityReservation",
                "DescribeListenerAttributes",
                "DescribeListenerCertificates",
                "DescribeListeners",
                "DescribeLoadBalancerAttributes",
                "DescribeLoadBalancers",
                "DescribeRules",
                "DescribeSSLPolicies",
                "DescribeTags",
                "DescribeTargetGroupAttributes",
                "DescribeTargetGroups",
                "DescribeTargetHealth",
            }
        ),
    ),
    "mutating": (
        (20.0, 3.0),
        frozenset(
            {
                "AddListenerCertificates",
                "AddTags",
                "CreateListener",
                "CreateRule",
                "CreateTargetGroup",
                "DeleteListener",
                "DeleteLoadBalancer",
                "DeleteRule",
                "DeleteTargetGroup",
                "ModifyCapacityReservation",
                "ModifyIpPools",
                "ModifyListener",
                "ModifyListenerAttributes",
                "ModifyLoadBalancerAttributes",
                "ModifyRule",
                "ModifyTargetGroup",
                "ModifyTargetGroupAttributes",
                "RemoveListenerCertificates",
                "RemoveTags",
                "SetIpAddressType",
                "SetRulePriorities",
                "SetSecurityGroups",
            }
        ),
    ),
    "create-trust-store": ((10.0, 0.2), frozenset({"CreateTrustStore"})),
    "modify-trust-store": (
        (10.0, 0.2),
        frozenset(
            {
                "AddTrustStoreRevocations",
                "DeleteSharedTrustStoreAssociation",
                "DeleteTrustStore",
                "ModifyTrustStore",
                "RemoveTrustStoreRevocations",
            }
        ),
    ),
    "get-trust-store": (
        (20.0, 4.0),
        frozenset({"GetResourcePolicy", "GetTrustStoreCaCertificatesBundle", "GetTrustStoreRevocationContent"}),
    ),
    "describe-trust-store": (
        (40.0, 10.0),
        frozenset({"DescribeTrustStoreAssociations", "DescribeTrustStoreRevocations", "DescribeTrustStores"}),
    ),
}
ELBV2_CATEGORY_OF = {action: category for category, (_, actions) in ELBV2_CATEGORIES.items() for action in actions}

EC2_THROTTLED_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    "<Message>Request limit exceeded.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
)
ELBV2_NAMESPACE = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/"
ELBV2_THROTTLED_BODY = (
    '<ErrorResponse xmlns="' + ELBV2_NAMESPACE + '">\n  <Error>\n    <Type>Sender</Type>\n'
    "    <Code>Throttling</Code>\n    <Message>Rate exceeded</Message>\n  </Error>\n"
    "  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
)


# ----------------------------------------------------------------------------------
# The setting.
# ----------------------------------------------------------------------------------


def _amount(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value >= 0


def _check(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if not isinstance(value, dict):
        return 'must be true, false or {"<service>:<Action>": [bucket size, refill per AWS second], ...}'
    for key, figures in value.items():
        service, _, action = str(key).partition(":")
        if service not in SERVICES or not action:
            return f"{key!r}: expected <service>:<Action> with a service among {', '.join(SERVICES)}"
        if not isinstance(figures, list) or len(figures) != 2 or not all(_amount(f) for f in figures):
            return f"{key}: must be [bucket size, refill per AWS second], two numbers >= 0"
    return None


switches.declare(SETTING, False, _check)


# ----------------------------------------------------------------------------------
# Buckets and refusals, per account, under one lock.
# ----------------------------------------------------------------------------------


class Bucket:
    """A token bucket that gains `refill` tokens at every whole AWS second of its life."""

    def __init__(self, figures: Figures, now: float) -> None:
        self.capacity, self.refill = figures
        self.tokens = self.capacity
        self.since = now  # the real instant up to which AWS time is accounted for
        self.into_second = 0.0  # AWS seconds since the last whole second

    def settle(self, now: float, scale: float) -> None:
        if now <= self.since:
            return
        elapsed = self.into_second + (now - self.since) / scale
        whole = math.floor(elapsed)
        self.into_second = elapsed - whole
        self.since = now
        if whole:
            self.tokens = min(self.capacity, self.tokens + whole * self.refill)


LOCK = threading.Lock()
BUCKETS: dict[str, dict[str, Bucket]] = {}  # account -> bucket name -> bucket
REFUSED: dict[str, dict[str, int]] = {}  # account -> key -> refusals

# A charge: (bucket name, its figures, tokens the request takes).
Charge = tuple[str, Figures, float]


def request_params(environ: dict) -> dict[str, list[str]]:  # type: ignore[type-arg]
    """The query-protocol parameters, from the query string and the form body."""
    params = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        body = core.read_body(environ)  # put back for moto
        for name, values in parse_qs(body.decode("utf-8", errors="replace")).items():
            params.setdefault(name, []).extend(values)
    return params


def ec2_charges(action: str, environ: dict) -> list[Charge]:  # type: ignore[type-arg]
    if action in EC2_UNFILTERED_ACTIONS:
        params = request_params(environ)
        narrowed = any(name.startswith("Filter.") or name in ("MaxResults", "NextToken") for name in params)
        if not narrowed:
            return [(f"ec2:{action} unfiltered", EC2_UNFILTERED, 1.0)]
        return [(f"ec2:{action}", EC2_NON_MUTATING, 1.0)]
    if action in EC2_UNCATEGORIZED:
        figures = EC2_UNCATEGORIZED[action]
    elif action in EC2_RESOURCE_INTENSIVE_ACTIONS:
        figures = EC2_RESOURCE_INTENSIVE
    elif action.startswith(EC2_NON_MUTATING_PREFIXES):
        figures = EC2_NON_MUTATING
    else:
        figures = EC2_MUTATING
    charges: list[Charge] = [(f"ec2:{action}", figures, 1.0)]
    if action in EC2_RESOURCE_BUCKETS:
        params = request_params(environ)
        if action == "RunInstances":
            try:
                instances = max(1, int(params.get("MaxCount", ["1"])[0]))
            except ValueError:
                instances = 1
        else:
            instances = sum(1 for name in params if name.startswith("InstanceId."))
        if instances:
            charges.append((f"ec2:{action} resources", EC2_RESOURCE_BUCKETS[action], float(instances)))
    return charges


def elbv2_charges(action: str) -> list[Charge]:
    category = ELBV2_CATEGORY_OF.get(action)
    if category is None:
        category = "non-mutating" if action.startswith(("Describe", "Get")) else "mutating"
    figures, _ = ELBV2_CATEGORIES[category]
    return [(f"elbv2 {category}", figures, 1.0), ("elbv2 account", ELBV2_ACCOUNT, 1.0)]


def charges_of(setting: Any, key: str, environ: dict) -> list[Charge]:  # type: ignore[type-arg]
    if isinstance(setting, dict) and key in setting:
        capacity, refill = setting[key]
        return [(key, (float(capacity), float(refill)), 1.0)]
    service, _, action = key.partition(":")
    if service == "ec2":
        return ec2_charges(action, environ)
    return elbv2_charges(action)


def admit(account: str, key: str, charges: list[Charge]) -> bool:
    """Takes the request's tokens from all of its buckets, or from none."""
    scale = switches.scale(account)
    with LOCK:
        now = switches.now()  # read under the lock, so that time only moves forward
        own = BUCKETS.setdefault(account, {})
        taken = []
        for name, figures, tokens in charges:
            bucket = own.get(name)
            if bucket is None:
                bucket = own[name] = Bucket(figures, now)
            bucket.settle(now, scale)
            taken.append((bucket, tokens))
        if all(bucket.tokens >= tokens for bucket, tokens in taken):
            for bucket, tokens in taken:
                bucket.tokens -= tokens
            return True
        refused = REFUSED.setdefault(account, {})
        refused[key] = refused.get(key, 0) + 1
        return False


def refusal(start_response: core.StartResponse, service: str) -> list[bytes]:
    request_id = str(uuid.uuid4())
    if service == "ec2":
        status, template = "503 Service Unavailable", EC2_THROTTLED_BODY
    else:
        status, template = "400 Bad Request", ELBV2_THROTTLED_BODY
    body = template.format(request_id=request_id).encode("utf-8")
    start_response(
        status,
        [
            ("Content-Type", "text/xml;charset=UTF-8"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", request_id),
        ],
    )
    return [body]


def throttle(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    setting = switches.setting(account, SETTING)
    service = key.partition(":")[0]
    if setting is False or service not in SERVICES:
        return following(environ, start_response)
    try:
        charges = charges_of(setting, key, environ)
    except Exception as err:  # noqa: BLE001 - a request we cannot read is not throttled
        core.note(f"throttling: cannot read {key}: {err!r}")
        return following(environ, start_response)
    if admit(account, key, charges):
        return following(environ, start_response)
    if core.VERBOSE:
        core.note(f"throttled {key} for {account}")
    return refusal(start_response, service)


# ----------------------------------------------------------------------------------
# Routes.
# ----------------------------------------------------------------------------------


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    account = core.query(environ).get("account", "")
    if not account:
        return core.answer(start_response, "400 Bad Request", {"error": "the account query parameter is required"})
    if path == PREFIX and method == "GET":
        with LOCK:
            return core.answer(start_response, "200 OK", dict(REFUSED.get(account, {})))
    if path == PREFIX + "/reset" and method == "POST":
        with LOCK:
            return core.answer(start_response, "200 OK", REFUSED.pop(account, {}))
    return core.answer(start_response, "404 Not Found", {"error": f"no {method} {path}"})


def watching(behaviour: core.App) -> core.App:
    """The behaviour route, around which an account's buckets are settled at the clock
    scale before a change, and started afresh when its throttling is posted or reset."""

    def serve_behaviour(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
        path = environ.get("PATH_INFO", "")
        account = core.query(environ).get("account", "")
        if environ.get("REQUEST_METHOD") != "POST" or not account:
            return behaviour(environ, start_response)
        restart = path == switches.PREFIX + "/reset"
        if path == switches.PREFIX:
            try:
                posted = core.json_body(environ)  # the body is put back for the route
            except ValueError:
                posted = None
            restart = isinstance(posted, dict) and SETTING in posted
        with LOCK:
            own = BUCKETS.get(account)
            if own:
                now, scale = switches.now(), switches.scale(account)
                for bucket in own.values():
                    bucket.settle(now, scale)
        statuses: list[str] = []

        def noting(status: str, headers, exc_info=None):  # type: ignore[no-untyped-def]
            statuses.append(status)
            return start_response(status, headers) if exc_info is None else start_response(status, headers, exc_info)

        answer = behaviour(environ, noting)
        if restart and statuses and statuses[-1].startswith("200"):
            with LOCK:
                BUCKETS.pop(account, None)
        return answer

    return serve_behaviour


def install() -> None:
    behaviour = core.ROUTES.get(switches.PREFIX)
    if behaviour is None:
        raise RuntimeError("throttling needs the behaviour route of switches, installed before it")
    core.route(switches.PREFIX, watching(behaviour))
    core.route(PREFIX, serve)
    core.wrap(core.RANK_THROTTLING, "throttling", throttle)
