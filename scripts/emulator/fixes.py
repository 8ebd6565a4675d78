"""Corrections to moto where it differs from AWS in what the provider relies on.

Each patch is one function in ``PATCHES`` with a comment saying what AWS does (and
where AWS documents it) and what moto did instead. They are always on: none of them
changes an answer AWS would give.
"""

from __future__ import annotations

import re
import threading
from typing import Callable

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
    ("fleet id tag on Spot Fleet instances", patch_fleet_instance_tag),
    ("client tokens on RequestSpotFleet, RunInstances, CreateLaunchTemplate", patch_client_tokens),
    ("unique AMI names on CreateImage", patch_unique_ami_names),
    ("cancelling unknown Spot Fleet requests", patch_cancel_unknown_fleets),
    ("tags of Spot Fleet requests after their creation", patch_fleet_request_tags),
    ("launch template versions based on a source version", patch_launch_template_source_version),
]


def install() -> None:
    for _, patch in PATCHES:
        patch()
