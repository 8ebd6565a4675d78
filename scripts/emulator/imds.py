"""Instance metadata (IMDSv2 only): what 169.254.169.254 answers on an instance.

Moto serves no instance metadata. Here every instance of every account has its own
instance metadata service:

    PUT  /_immutable/imds/<instance-id>/latest/api/token
    GET  /_immutable/imds/<instance-id>/latest/meta-data/<item>
    GET  /_immutable/imds/<instance-id>/latest/dynamic/instance-identity/document
    POST /_immutable/imds/<instance-id>/outage?seconds=AWS_SECONDS[&mode=unavailable|drop]
    GET  /_immutable/imds/<instance-id>/outage

It answers as on an instance that requires IMDSv2 (HttpTokens required): "Use a PUT
request to initiate a session ... The PUT request must include a header that
specifies the time to live (TTL) for the token, in seconds, up to a maximum of six
hours (21,600 seconds)"; a token lasts "a minimum of one second"; "When token usage
is set to required, requests without a valid token or with an expired token receive
a 401 - Unauthorized HTTP error code"; "The token is an instance-specific key"; "PUT
requests are rejected if they contain an X-Forwarded-For header" (Amazon EC2 User
Guide, "Use IMDSv2",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html).
"All instance metadata is returned as text (HTTP content type text/plain)", a missing
item is "404 - Not Found", an invalid PUT "400 - Missing or Invalid Parameters", a
PUT to a version-specific token path "403 Forbidden" (Amazon EC2 User Guide,
"Retrieve instance metadata",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html).
The token's TTL runs on the account's scaled clock (``switches``: ``clock_scale``).
Before answering, the account's timed events that are due happen (``switches.tick``).

Items
-----
From "Instance metadata categories" (Amazon EC2 User Guide,
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-categories.html):
ami-id, instance-id, instance-type, local-ipv4, placement/availability-zone,
placement/region ("The AWS Region in which the instance is launched"),
instance-life-cycle ("The purchasing option of this instance": spot for a Spot
Instance, on-demand otherwise: RunInstances without Spot market options, and the
On-Demand part of a Spot Fleet, ``fixes``), spot/instance-action,
spot/termination-time and events/recommendations/rebalance (once an interruption
posted them, ``spot``), tags/instance and iam/ (below). A path ending in "/" lists
what is below it, one entry a line, a sub-directory with a trailing "/". The dynamic
instance-identity/document is the JSON of "Instance identity documents"
(https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-identity-documents.html).

Instance tags
-------------
tags/instance lists the instance's tag keys, one a line, and tags/instance/<key>
holds the tag's value: "The instance tags associated with the instance. Only
available if you explicitly allow access to tags in instance metadata" (Instance
metadata categories, above). Access is allowed by the instance's metadata option
InstanceMetadataTags = enabled ("Set to enabled to allow access to instance tags from
the instance metadata ... Default: disabled", Amazon EC2 API Reference,
InstanceMetadataOptionsRequest and LaunchTemplateInstanceMetadataOptionsRequest,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html),
given to RunInstances, to ModifyInstanceMetadataOptions, or in the launch template
an instance is launched from, by RunInstances or by a Spot Fleet (``fixes``): "You
can also allow access to tags by specifying this in a launch template. Instances that
are launched by using the template allow access to tags in the instance metadata".
Without it the whole tags/ category answers 404. The tags are read at each request:
"If you add or remove an instance tag, the instance metadata is updated while the
instance is running". With access allowed, AWS restricts tag keys: they "Can only
include letters (a-z, A-Z), numbers (0-9), and the following characters: + - = . , _
: @", "Can't contain spaces or /", "Can't consist only of . (one period), .. (two
periods), or _index" (Amazon EC2 User Guide, "View tags for your EC2 instances using
instance metadata",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html). AWS
refuses such keys ("Non-compliance will result in failed launches for new instances
or an error for existing instances"); here the instance launches and keeps them, and
its metadata leaves them out.

Credentials of the instance profile
-----------------------------------
iam/info is {"Code", "LastUpdated", "InstanceProfileArn", "InstanceProfileId"},
iam/security-credentials/ lists the name of the role, and
iam/security-credentials/<role-name> holds the role's temporary credentials as AWS
shows them: {"Code": "Success", "LastUpdated", "Type": "AWS-HMAC", "AccessKeyId",
"SecretAccessKey", "Token", "Expiration"}. Both are there "If there is an IAM role
associated with the instance ... Otherwise, not present" (Instance metadata
categories, above): without an instance profile, or with a profile that holds no
role, iam/ answers 404. The profile is the instance's current association
(RunInstances IamInstanceProfile, a launch template's, a Spot Fleet launch
specification's, AssociateIamInstanceProfile), read at each request.

"These security credentials are temporary and we rotate them automatically. We make
new credentials available at least five minutes before the expiration of the old
credentials" (Amazon EC2 User Guide, "Retrieve security credentials from instance
metadata",
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-security-credentials.html).
Here a set lasts CREDENTIAL_SECONDS (six AWS hours; Expiration is that far ahead on
the wall clock of the account's scaled clock) and the next set is issued at the first
request RENEW_BEFORE_SECONDS (one AWS hour) before it expires, or at once when the
profile's role changed. Each set is moto's STS AssumeRole of the role in the
instance's account with the instance id as the session name (so GetCallerIdentity
answers arn:aws:sts::<account>:assumed-role/<role>/<instance-id>): a temporary access
key id (ASIA...) with its session token, registered with the account's IAM, so that
a request signed with it is the instance's account's, for moto and for the request
accounting (``core.classify``). Moto checks neither signatures nor expiry: a set that
was replaced keeps working.

Availability
------------
Nothing answers for an instance that is not running (stopped or terminated): such a
request gets a 503. An outage makes one instance's metadata unavailable for
AWS_SECONDS: mode "unavailable" (the default) answers 503, mode "drop" closes the
connection without an answer. seconds=0 ends it.

Time stamps in the metadata are whole UTC seconds, as AWS writes them; the control
paths give milliseconds and epoch seconds.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import struct
import time
from typing import Any, Callable, Iterable

from . import core, spot, switches

PREFIX = "/_immutable/imds"

TOKEN_TTL_MAX = 21600
# How long a set of instance profile credentials lasts, and how long before its
# expiration the next set is issued (AWS seconds).
CREDENTIAL_SECONDS = 6 * 3600.0
RENEW_BEFORE_SECONDS = 3600.0
# Tag keys instance metadata can hold (see the module's documentation).
TAG_KEY_RE = re.compile(r"^[A-Za-z0-9+\-=.,_:@]+$")
RESERVED_TAG_KEYS = (".", "..", "_index")

# Everything below is guarded by spot.LOCK, as the interruptions it reads.
# token -> (instance id, real instant it expires)
TOKENS: dict[str, tuple[str, float]] = {}
# instance id -> (real instant it ends, mode)
OUTAGES: dict[str, tuple[float, str]] = {}


class Credentials:
    """One set of an instance's role credentials."""

    def __init__(self, account: str, role_arn: str, assumed: Any, now: float) -> None:
        self.role_arn = role_arn
        self.access_key_id = str(assumed.access_key_id)
        self.secret_access_key = str(assumed.secret_access_key)
        self.token = str(assumed.session_token)
        self.issued = time.time()
        self.expires = switches.wall_after(account, CREDENTIAL_SECONDS)
        # The real instant from which the next set is issued.
        self.renew_at = now + switches.real_seconds(account, CREDENTIAL_SECONDS - RENEW_BEFORE_SECONDS)


# instance id -> its current credentials
CREDENTIALS: dict[str, Credentials] = {}

# An item's text, or what computes it when it is asked for.
Item = str | Callable[[], str]


# ----------------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------------


def text(start_response, status: str, body: str, headers: list[tuple[str, str]] | None = None) -> list[bytes]:  # type: ignore[no-untyped-def]
    data = body.encode("utf-8")
    start_response(
        status,
        [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))] + (headers or []),
    )
    return [data]


def unavailable(environ, start_response, mode: str, why: str) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    if mode == "drop":
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            try:
                # Linger 0: closing resets the connection instead of finishing it.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # The server treats this as a connection the client dropped: no answer, no log.
        raise ConnectionResetError(why)
    return text(start_response, "503 Service Unavailable", why)


def document_json(payload: dict[str, Any]) -> str:
    """JSON laid out as AWS shows its credential documents ("Code" : "Success")."""
    return json.dumps(payload, indent=2, separators=(",", " : "))


# ----------------------------------------------------------------------------------
# Items
# ----------------------------------------------------------------------------------


def metadata(
    account: str, region: str, backend: Any, instance: Any, interruption: spot.Interruption | None, now: float
) -> dict[str, Item]:
    items: dict[str, Item] = {
        "ami-id": str(instance.image_id),
        "instance-id": instance.id,
        "instance-type": str(instance.instance_type),
        "instance-life-cycle": "spot" if instance.lifecycle == "spot" else "on-demand",
        "local-ipv4": str(instance.private_ip or ""),
        "placement/availability-zone": str(instance.placement.zone),
        "placement/region": region,
    }
    items.update(tag_items(instance))
    items.update(iam_items(account, region, backend, instance, now))
    if interruption is not None:
        if interruption.rebalance_at is not None and now >= interruption.rebalance_at:
            noticed = spot.iso_seconds(interruption.wall(interruption.rebalance_at))
            items["events/recommendations/rebalance"] = json.dumps({"noticeTime": noticed})
        if now >= interruption.notice_at:
            at = spot.iso_seconds(interruption.wall(interruption.terminate_at))
            items["spot/instance-action"] = json.dumps({"action": "terminate", "time": at})
            items["spot/termination-time"] = at
    return items


def tags_allowed(instance: Any) -> bool:
    options = getattr(instance, "metadata_options", None)
    return getattr(options, "instance_metadata_tags", None) == "enabled"


def servable_tag_key(key: str) -> bool:
    return bool(TAG_KEY_RE.match(key)) and key not in RESERVED_TAG_KEYS


def tag_items(instance: Any) -> dict[str, Item]:
    if not tags_allowed(instance):
        return {}
    return {
        f"tags/instance/{tag['key']}": str(tag.get("value") or "")
        for tag in instance.get_tags()
        if servable_tag_key(str(tag["key"]))
    }


def instance_profile(backend: Any, instance: Any) -> Any:
    """The IAM instance profile (moto's) associated with the instance, if any."""
    association = backend.iam_instance_profile_associations.get(instance.id)
    return association.iam_instance_profile if association is not None else None


def iam_items(account: str, region: str, backend: Any, instance: Any, now: float) -> dict[str, Item]:
    profile = instance_profile(backend, instance)
    roles = list(getattr(profile, "roles", None) or []) if profile is not None else []
    if not roles:
        return {}
    role = roles[0]

    def info() -> str:
        held = credentials(account, region, instance.id, role, now)
        return document_json(
            {
                "Code": "Success",
                "LastUpdated": spot.iso_seconds(held.issued),
                "InstanceProfileArn": profile.arn,
                "InstanceProfileId": profile.id,
            }
        )

    def security_credentials() -> str:
        held = credentials(account, region, instance.id, role, now)
        return document_json(
            {
                "Code": "Success",
                "LastUpdated": spot.iso_seconds(held.issued),
                "Type": "AWS-HMAC",
                "AccessKeyId": held.access_key_id,
                "SecretAccessKey": held.secret_access_key,
                "Token": held.token,
                "Expiration": spot.iso_seconds(held.expires),
            }
        )

    return {"iam/info": info, f"iam/security-credentials/{role.name}": security_credentials}


def credentials(account: str, region: str, instance_id: str, role: Any, now: float) -> Credentials:
    """The instance's current credentials for `role`: those it has, or a new set."""
    held = CREDENTIALS.get(instance_id)
    if held is not None and held.role_arn == role.arn and now < held.renew_at:
        return held
    from moto.sts.models import sts_backends
    from moto.utilities.utils import get_partition

    assumed = sts_backends[account][get_partition(region)].assume_role(
        region_name=region,
        role_session_name=instance_id,
        role_arn=role.arn,
        policy=None,
        duration=int(CREDENTIAL_SECONDS),
        external_id=None,
    )
    held = CREDENTIALS[instance_id] = Credentials(account, role.arn, assumed, now)
    return held


def identity_document(account: str, region: str, instance: Any) -> str:
    launched = instance.launch_time
    return json.dumps(
        {
            "accountId": account,
            "architecture": instance.architecture,
            "availabilityZone": instance.placement.zone,
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": instance.image_id,
            "instanceId": instance.id,
            "instanceType": instance.instance_type,
            "kernelId": None,
            "pendingTime": launched.strftime("%Y-%m-%dT%H:%M:%SZ") if hasattr(launched, "strftime") else str(launched),
            "privateIp": instance.private_ip,
            "ramdiskId": None,
            "region": region,
            "version": "2017-09-30",
        },
        indent=2,
    )


def listing(items: dict[str, Item], directory: str) -> str | None:
    """The entries below `directory` ("" is the top), or None when there are none."""
    prefix = directory.strip("/")
    prefix = prefix + "/" if prefix else ""
    entries = []
    for name in items:
        if not name.startswith(prefix):
            continue
        rest = name[len(prefix):]
        entry = rest.split("/", 1)[0] + ("/" if "/" in rest else "")
        if entry not in entries:
            entries.append(entry)
    return "\n".join(sorted(entries)) if entries else None


# ----------------------------------------------------------------------------------
# The service
# ----------------------------------------------------------------------------------


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")[len(PREFIX):].lstrip("/")
    instance_id, _, rest = path.partition("/")
    method = environ.get("REQUEST_METHOD", "GET")
    with spot.LOCK:
        found = spot.locate(instance_id) if instance_id.startswith("i-") else None
    if found is None:
        return core.answer(start_response, "404 Not Found", {"error": f"no instance {instance_id!r}"})
    account = found[0]
    switches.tick(account)
    if rest == "outage":
        return serve_outage(environ, start_response, account, instance_id, method)
    items: dict[str, Item] = {}
    document, tokens_ok = "", False
    with spot.LOCK:
        located = spot.locate(instance_id, account)
        if located is None:
            return core.answer(start_response, "404 Not Found", {"error": f"no instance {instance_id!r}"})
        _, region, backend, instance = located
        now = switches.now()
        outage = OUTAGES.get(instance_id)
        if outage is not None and now >= outage[0]:
            OUTAGES.pop(instance_id)
            outage = None
        if outage is not None:
            mode, why = outage[1], f"instance metadata of {instance_id} is unavailable"
        elif instance.state != "running":
            mode, why = "unavailable", f"{instance_id} is {instance.state}"
            CREDENTIALS.pop(instance_id, None)
        else:
            mode = why = ""
        if not mode:
            own = spot.STATE.get(account)
            interruption = None
            if own is not None:
                interruption = own.pending.get(instance_id) or next(
                    (i for i in reversed(own.interruptions) if i.instance_id == instance_id), None
                )
            items = metadata(account, region, backend, instance, interruption, now)
            document = identity_document(account, region, instance)
            tokens_ok = token_valid(environ, instance_id, now)
    if mode:
        return unavailable(environ, start_response, mode, why)

    if rest.endswith("api/token"):
        if method != "PUT":
            return text(start_response, "405 Method Not Allowed", "405 - Method Not Allowed")
        if rest != "latest/api/token":
            return text(start_response, "403 Forbidden", "403 - Forbidden")
        if environ.get("HTTP_X_FORWARDED_FOR"):
            return text(start_response, "403 Forbidden", "403 - Forbidden")
        ttl_text = environ.get("HTTP_X_AWS_EC2_METADATA_TOKEN_TTL_SECONDS", "")
        if not ttl_text.strip().isdigit() or not 1 <= int(ttl_text) <= TOKEN_TTL_MAX:
            return text(start_response, "400 Bad Request", "400 - Missing or Invalid Parameters")
        ttl = int(ttl_text)
        token = base64.b64encode(secrets.token_bytes(42)).decode("ascii")
        with spot.LOCK:
            now = switches.now()
            for old in [t for t, (_, until) in TOKENS.items() if until <= now]:
                TOKENS.pop(old)
            TOKENS[token] = (instance_id, now + switches.real_seconds(account, ttl))
        return text(start_response, "200 OK", token, [("X-aws-ec2-metadata-token-ttl-seconds", str(ttl))])

    if method not in ("GET", "HEAD"):
        return text(start_response, "405 Method Not Allowed", "405 - Method Not Allowed")
    if not tokens_ok:
        return text(start_response, "401 Unauthorized", "401 - Unauthorized")
    if rest in ("latest/dynamic/instance-identity/document",):
        return text(start_response, "200 OK", document)
    if rest in ("latest/dynamic", "latest/dynamic/"):
        return text(start_response, "200 OK", "instance-identity/")
    if rest in ("latest/dynamic/instance-identity", "latest/dynamic/instance-identity/"):
        return text(start_response, "200 OK", "document")
    if rest in ("latest", "latest/"):
        return text(start_response, "200 OK", "dynamic\nmeta-data")
    if rest == "latest/meta-data" or rest.startswith("latest/meta-data/"):
        item = rest[len("latest/meta-data"):].strip("/")
        if item in items and not rest.endswith("/"):
            value = items[item]
            if callable(value):
                with spot.LOCK:
                    value = value()
            return text(start_response, "200 OK", value)
        listed = listing(items, item)
        if listed is not None:
            return text(start_response, "200 OK", listed)
    return text(start_response, "404 Not Found", "404 - Not Found")


def token_valid(environ: dict, instance_id: str, now: float) -> bool:  # type: ignore[type-arg]
    token = environ.get("HTTP_X_AWS_EC2_METADATA_TOKEN", "")
    held = TOKENS.get(token) if token else None
    return held is not None and held[0] == instance_id and now < held[1]


def serve_outage(environ, start_response, account: str, instance_id: str, method: str) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    params = core.query(environ)

    def describe() -> dict[str, Any]:
        outage = OUTAGES.get(instance_id)
        now = switches.now()
        if outage is None or outage[0] <= now:
            return {"instance": instance_id, "until": None, "mode": None}
        return {"instance": instance_id, "until": spot.iso_millis(time.time() + outage[0] - now), "mode": outage[1]}

    if method == "GET":
        with spot.LOCK:
            return core.answer(start_response, "200 OK", describe())
    if method != "POST":
        return core.answer(start_response, "404 Not Found", {"error": f"no {method} outage"})
    mode = params.get("mode", "unavailable")
    try:
        seconds = float(params.get("seconds", ""))
    except ValueError:
        seconds = -1.0
    if seconds < 0 or mode not in ("unavailable", "drop"):
        return core.answer(
            start_response, "400 Bad Request",
            {"error": "seconds=AWS_SECONDS (>= 0) is required; mode is unavailable or drop"},
        )
    with spot.LOCK:
        if seconds == 0:
            OUTAGES.pop(instance_id, None)
        else:
            OUTAGES[instance_id] = (switches.now() + switches.real_seconds(account, seconds), mode)
        return core.answer(start_response, "200 OK", describe())


def install() -> None:
    core.route(PREFIX, serve)
