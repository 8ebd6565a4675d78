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


# Images made by CreateImage are EBS-backed, with the instance's volumes as their
# block device mapping.
#
# AWS: CreateImage "Creates an Amazon EBS-backed AMI from an Amazon EBS-backed
# instance", and "If you customized your instance with instance store volumes or
# Amazon EBS volumes in addition to the root device volume, the new AMI contains block
# device mapping information for those volumes"; their size cannot be changed (Amazon
# EC2 API Reference, CreateImage,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateImage.html). An
# image's rootDeviceType is one of ebs | instance-store (Amazon EC2 API Reference,
# Image, https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html).
# Moto reports rootDeviceType "standard" and one made-up 15 GiB "standard" volume that
# is kept on termination, whatever the instance has; Packer's amazon-ebs builder
# refuses such an image as a source ("The provided source AMI has an invalid root
# device type. Expected 'ebs', got 'standard'"). Here the image's root device is the
# instance's, and each volume attached to the instance maps to a snapshot of it with
# the volume's size, type, encryption and DeleteOnTermination.
def patch_created_images_are_ebs() -> None:
    import moto.ec2.models.amis as ami_models

    original_create = ami_models.AmiBackend.create_image
    moto_mappings = ami_models.Ami.block_device_mappings

    def create_image(self, instance_id, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        ami = original_create(self, instance_id, name, *args, **kwargs)
        instance = self.get_instance(instance_id)
        ami.root_device_type = "ebs"
        ami.root_device_name = instance.root_device_name
        mappings = []
        for device, block in instance.get_block_device_mapping:
            volume = self.get_volume(block.volume_id)
            if device == instance.root_device_name:
                # The snapshot moto made for the image stands for the root volume's.
                snapshot = ami.ebs_snapshot
                snapshot.volume = volume
            else:
                snapshot = self.create_snapshot(
                    volume.id,
                    f"Created by CreateImage({instance_id}) for {ami.id}",
                    ami.owner_id,
                    from_ami=ami.id,
                )
            ebs = {
                "DeleteOnTermination": bool(block.delete_on_termination),
                "SnapshotId": snapshot.id,
                "VolumeSize": volume.size,
                "VolumeType": volume.volume_type,
                "Encrypted": bool(volume.encrypted),
            }
            mappings.append({"DeviceName": device, "Ebs": ebs})
        ami.__dict__["_immutable_block_device_mappings"] = mappings
        return ami

    def block_device_mappings(self):  # type: ignore[no-untyped-def]
        own = self.__dict__.get("_immutable_block_device_mappings")
        return own if own is not None else moto_mappings.fget(self)

    ami_models.AmiBackend.create_image = create_image
    ami_models.Ami.block_device_mappings = property(block_device_mappings)

    # CopyImage keeps what the image is: "Copies the specified AMI from the specified
    # source Region to the current Region", with "Encrypted: Specifies whether the
    # destination snapshots of the copied image should be encrypted" (Amazon EC2 API
    # Reference, CopyImage,
    # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html). Moto
    # makes the copy a "standard" image with its made-up volume; Packer's amazon-ebs
    # builder copies the image it built when `encrypt_boot` is set, and that copy is
    # the layer's AMI. Here the copy has the source's root device and block device
    # mapping, encrypted when asked.
    import moto.ec2.responses.amis as ami_responses

    original_copy = ami_models.AmiBackend.copy_image
    original_copy_response = ami_responses.AmisResponse.copy_image
    asked = threading.local()

    def copy_image_response(self):  # type: ignore[no-untyped-def]
        asked.encrypted = str(self._get_param("Encrypted") or "").lower() == "true"
        try:
            return original_copy_response(self)
        finally:
            asked.encrypted = False

    def copy_image(self, source_image_id, source_region, *args, **kwargs):  # type: ignore[no-untyped-def]
        from moto.ec2.models import ec2_backends

        copy = original_copy(self, source_image_id, source_region, *args, **kwargs)
        source = ec2_backends[self.account_id][source_region].describe_images(ami_ids=[source_image_id])[0]
        copy.root_device_type = source.root_device_type
        copy.root_device_name = source.root_device_name
        mappings = source.__dict__.get("_immutable_block_device_mappings")
        if mappings is not None:
            encrypted = getattr(asked, "encrypted", False)
            copy.__dict__["_immutable_block_device_mappings"] = [
                {**m, "Ebs": {**m["Ebs"], "Encrypted": bool(m["Ebs"].get("Encrypted")) or encrypted}}
                if "Ebs" in m
                else dict(m)
                for m in mappings
            ]
        return copy

    ami_models.AmiBackend.copy_image = copy_image
    ami_responses.AmisResponse.copy_image = copy_image_response


# DescribeImages with image ids applies its owners and filters too.
#
# AWS: "If you specify multiple filters, the filters are joined with an AND, and the
# request returns only results that match all of the specified filters" (Amazon EC2
# API Reference, Filter,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Filter.html); Owners
# "Scopes the results to images with the specified owners" (Amazon EC2 API Reference,
# DescribeImages,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeImages.html);
# "If you specify one or more AMI IDs, only AMIs that have the specified IDs are
# returned. If you specify an invalid AMI ID, a fault is returned", and given owners
# too, only AMIs from those owners are returned (Amazon EC2 Developer Guide,
# 2008-02-01, DescribeImages,
# http://docs.amazonwebservices.com/AWSEC2/2008-02-01/DeveloperGuide/ApiReference-SOAP-DescribeImages.html).
# The fault is InvalidAMIID.NotFound (Error codes for the Amazon EC2 API,
# https://docs.aws.amazon.com/ec2/latest/devguide/errors-overview.html). So an image
# that exists but does not match the owners or filters is left out of an answer that
# is not an error (an empty list when it was the only one), and an id that does not
# exist fails the call, whatever the other ids. Moto returns the images of the ids
# whatever owners and filters say (a Packer source_ami pinned to an image its
# source_ami_filter rules out is found anyway), and fails on an unknown id only when
# no other id is known. A deregistered image stays known but unlisted: "Recently
# deregistered images appear in the returned results for a short interval and then
# return empty results" (DescribeImages, above).
def patch_describe_images_by_id_and_filters() -> None:
    import moto.ec2.models.amis as ami_models
    from moto.ec2.exceptions import InvalidAMIIdError

    original = ami_models.AmiBackend.describe_images

    def describe_images(  # type: ignore[no-untyped-def]
        self, ami_ids=None, filters=None, exec_users=None, owners=None
    ):
        scope = {"filters": filters, "exec_users": exec_users, "owners": owners}
        if not ami_ids:
            return original(self, ami_ids=ami_ids, **scope)
        images = original(self, ami_ids=ami_ids)
        unknown = [i for i in ami_ids if i not in self.amis and i not in self.deleted_amis]
        if unknown:
            raise InvalidAMIIdError(unknown)
        if filters or exec_users or owners:
            matching = {ami.id for ami in original(self, ami_ids=None, **scope)}
            images = [ami for ami in images if ami.id in matching]
        return images

    ami_models.AmiBackend.describe_images = describe_images


# ModifyImageAttribute changes an image's description.
#
# AWS: "To specify the attribute, you can use the Attribute parameter, or one of the
# following parameters: Description, ImdsSupport, or LaunchPermission"; Description is
# "A new description for the AMI", and Value goes with Attribute=description (Amazon
# EC2 API Reference, ModifyImageAttribute,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyImageAttribute.html).
# DescribeImages and DescribeImageAttribute (description) then report the new one.
# Moto answers such a request with success and keeps the old description. Packer sends
# it after CreateImage when a template has an ami_description.
def patch_image_description() -> None:
    import moto.ec2.responses.amis as ami_responses
    from moto.core.responses import EmptyResult
    from moto.ec2.exceptions import InvalidAMIIdError, UnvailableAMIIdError

    original = ami_responses.AmisResponse.modify_image_attribute

    def modify_image_attribute(self):  # type: ignore[no-untyped-def]
        description = (self._get_param("Description", {}) or {}).get("Value")
        if description is None and self._get_param("Attribute") == "description":
            description = self._get_param("Value")
        if description is None:
            return original(self)
        ami_id = self._get_param("ImageId")
        self.error_on_dryrun()
        ami = self.ec2_backend.amis.get(ami_id)
        if ami is None:
            if ami_id in self.ec2_backend.deleted_amis:
                raise UnvailableAMIIdError(ami_id)
            raise InvalidAMIIdError(ami_id)
        ami.description = description
        return EmptyResult()

    ami_responses.AmisResponse.modify_image_attribute = modify_image_attribute


# A Spot Fleet request's On-Demand capacity.
#
# AWS: "In your Spot Fleet request, you specify your desired target capacity and how
# much of that capacity must be On-Demand. The balance comprises Spot capacity" (Amazon
# EC2 User Guide, On-Demand in Spot Fleet,
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/on-demand-in-spot.html).
# DescribeSpotFleetRequests reports OnDemandTargetCapacity and OnDemandFulfilledCapacity
# ("The number of On-Demand units fulfilled by this request compared to the set target
# On-Demand capacity") (Amazon EC2 API Reference, SpotFleetRequestConfigData,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfigData.html),
# and ModifySpotFleetRequest takes a new OnDemandTargetCapacity (Amazon EC2 API
# Reference, ModifySpotFleetRequest,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySpotFleetRequest.html).
# Moto drops OnDemandTargetCapacity, so a client reading the fleet back sees none. Here
# the On-Demand target is kept and reported. The emulated fleet launches all of its
# capacity at once, its first On-Demand units as On-Demand instances (see
# patch_fleet_instance_options); an instance keeps its purchasing option when the
# On-Demand target changes later, and the On-Demand part counts as fulfilled as far as
# the fleet's fulfilled capacity goes.
_REQUESTED = threading.local()


def patch_fleet_on_demand_capacity() -> None:
    import moto.ec2.models.spot_requests as spot_models
    import moto.ec2.responses.spot_fleets as fleet_responses

    fleet_cls = spot_models.SpotFleetRequest
    original_config = fleet_cls.spot_fleet_request_config
    original_request = fleet_responses.SpotFleets.request_spot_fleet
    original_modify = fleet_responses.SpotFleets.modify_spot_fleet_request

    def spot_fleet_request_config(self):  # type: ignore[no-untyped-def]
        config = original_config.fget(self)
        on_demand = int(self.__dict__.get("_immutable_on_demand_target", 0))
        config["OnDemandTargetCapacity"] = on_demand
        config["OnDemandFulfilledCapacity"] = float(min(on_demand, self.fulfilled_capacity))
        return config

    def request_spot_fleet(self):  # type: ignore[no-untyped-def]
        config = self._get_param("SpotFleetRequestConfig", {}) or {}
        on_demand = int(config.get("OnDemandTargetCapacity") or 0)
        # The fleet launches its first instances as it is made: it learns its
        # On-Demand target then (patch_fleet_instance_options).
        _REQUESTED.on_demand = on_demand
        try:
            result = original_request(self)
        finally:
            _REQUESTED.on_demand = None
        fleet = self.ec2_backend.spot_fleet_requests.get((result.result or {}).get("SpotFleetRequestId"))
        if fleet is not None:
            fleet.__dict__["_immutable_on_demand_target"] = on_demand
        return result

    def modify_spot_fleet_request(self):  # type: ignore[no-untyped-def]
        result = original_modify(self)
        on_demand = self._get_int_param("OnDemandTargetCapacity")
        fleet = self.ec2_backend.spot_fleet_requests.get(self._get_param("SpotFleetRequestId"))
        if on_demand is not None and fleet is not None:
            fleet.__dict__["_immutable_on_demand_target"] = on_demand
        return result

    fleet_cls.spot_fleet_request_config = property(spot_fleet_request_config)
    fleet_responses.SpotFleets.request_spot_fleet = request_spot_fleet
    fleet_responses.SpotFleets.modify_spot_fleet_request = modify_spot_fleet_request


# TerminateInstances is idempotent.
#
# AWS: "Terminates the specified instances. This operation is idempotent; if you
# terminate an instance more than once, each call succeeds" (Amazon EC2 API Reference,
# TerminateInstances,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_TerminateInstances.html).
# Moto terminates a terminated instance again: a Spot Fleet's instance counts against
# the fleet's fulfilled capacity a second time, and once the fleet is gone (cancelled
# with its instances) the call fails with an HTTP 500. A client that retries a
# TerminateInstances whose answer was lost does exactly that. Here terminating a
# terminated instance changes nothing and answers its state.
def patch_terminate_idempotent() -> None:
    import copy

    import moto.ec2.models.instances as instance_models

    original = instance_models.Instance.terminate

    def terminate(self):  # type: ignore[no-untyped-def]
        if self._state.name == "terminated":
            return copy.copy(self._state)
        return original(self)

    instance_models.Instance.terminate = terminate


# A Spot Fleet's fulfilled capacity, and what a lower target capacity does to it.
#
# AWS: FulfilledCapacity is "The number of units fulfilled by this request compared to
# the set target capacity" (Amazon EC2 API Reference, SpotFleetRequestConfigData,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfigData.html).
# ModifySpotFleetRequest: "To scale up your Spot Fleet, increase its target capacity.
# The Spot Fleet launches the additional Spot Instances according to the allocation
# strategy"; "To scale down your Spot Fleet, decrease its target capacity. First, the
# Spot Fleet cancels any open requests that exceed the new target capacity. You can
# request that the Spot Fleet terminate Spot Instances until the size of the fleet no
# longer exceeds the new target capacity. ... Alternatively, you can request that the
# Spot Fleet keep the fleet at its current size, but not replace any Spot Instances
# that are interrupted or that you terminate manually"; ExcessCapacityTerminationPolicy
# "Indicates whether running instances should be terminated if the target capacity of
# the Spot Fleet request is decreased below the current size of the Spot Fleet", valid
# values noTermination | default (Amazon EC2 API Reference, ModifySpotFleetRequest,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifySpotFleetRequest.html).
# So after a decrease with noTermination the fleet keeps its instances and reports
# them as fulfilled above the target; terminating the excess brings the fulfilled
# capacity down to the target, and nothing is replaced (a maintain fleet replaces only
# what leaves it below its target, ``spot``). With default (or no policy) the fleet
# terminates the excess itself.
#
# Moto keeps a counter of the capacity it launched: it forgets to count down an
# instance that was launched from a launch specification without a subnet (the
# instance got the default subnet) and then reports capacity the fleet no longer has;
# a later increase then compares the target with that stale figure, and with no policy
# given terminates instances to reach it (raising the target from 2 to 3 after two of
# four instances were terminated left one). It also only honours the policy spelled
# "Default", while clients send AWS's "default" (which moto then treats as
# noTermination), and fails with an HTTP 500 when TargetCapacity is omitted. Here the
# fulfilled capacity is always the weighted capacity of the fleet's pending and running
# instances; the excess a decrease terminates is chosen among those, in launch order,
# down to the target and no further (AWS chooses by price or pool capacity, which are
# not emulated); the policy is read as AWS spells it; and a request without
# TargetCapacity keeps the current one.
def instance_weight(fleet, instance) -> float:  # type: ignore[no-untyped-def]
    """The weighted capacity of the launch specification `instance` came from."""
    same_type = [s for s in fleet.launch_specs if s.instance_type == instance.instance_type]
    for spec in same_type:
        if spec.subnet_id == instance.subnet_id:
            return float(spec.weighted_capacity)
    for spec in same_type:
        if not spec.subnet_id:
            return float(spec.weighted_capacity)
    return float(same_type[0].weighted_capacity) if same_type else 1.0


def live_requests(fleet) -> list:  # type: ignore[no-untyped-def,type-arg]
    """The fleet's requests whose instance is pending or running, in launch order."""
    return [
        r for r in getattr(fleet, "spot_requests", [])
        if getattr(r, "instance", None) is not None and r.instance.state in ("pending", "running")
    ]


def live_capacity(fleet) -> float:  # type: ignore[no-untyped-def]
    return float(sum(instance_weight(fleet, r.instance) for r in live_requests(fleet)))


def patch_fleet_fulfilled_capacity() -> None:
    import moto.ec2.models.spot_requests as spot_models

    fleet_cls = spot_models.SpotFleetRequest
    backend_cls = spot_models.SpotRequestBackend
    original_modify = backend_cls.modify_spot_fleet_request

    def ignore(self, value) -> None:  # type: ignore[no-untyped-def]
        """Moto's own count (at creation, after a launch or a termination) is not kept."""

    def terminate_instances(self):  # type: ignore[no-untyped-def]
        excess = live_capacity(self) - float(self.target_capacity)
        chosen = []
        for request in live_requests(self):
            weight = instance_weight(self, request.instance)
            if weight <= excess:
                excess -= weight
                chosen.append(request.instance.id)
        self.spot_requests = [r for r in self.spot_requests if r.instance.id not in chosen]
        if chosen:
            self.ec2_backend.terminate_instances(chosen)

    def modify_spot_fleet_request(self, spot_fleet_request_id, target_capacity, terminate_instances):  # type: ignore[no-untyped-def]
        fleet = self.spot_fleet_requests.get(spot_fleet_request_id)
        if target_capacity is None and fleet is not None:
            target_capacity = fleet.target_capacity
        if str(terminate_instances or "default").lower() == "default":
            terminate_instances = "Default"  # what moto compares with
        return original_modify(self, spot_fleet_request_id, target_capacity, terminate_instances)

    fleet_cls.fulfilled_capacity = property(live_capacity, ignore)
    fleet_cls.terminate_instances = terminate_instances
    backend_cls.modify_spot_fleet_request = modify_spot_fleet_request


# A Spot Fleet request's maintenance strategies (Capacity Rebalancing).
#
# AWS: SpotFleetRequestConfigData.SpotMaintenanceStrategies holds "The strategies for
# managing your Spot Instances that are at an elevated risk of being interrupted"
# (Amazon EC2 API Reference, SpotFleetRequestConfigData,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfigData.html),
# its CapacityRebalance a ReplacementStrategy, "Only available for fleets of type
# maintain", launch | launch-before-terminate, and a TerminationDelay in seconds,
# "Required when ReplacementStrategy is set to launch-before-terminate. Not valid when
# ReplacementStrategy is set to launch. Valid values: Minimum value of 120 seconds.
# Maximum value of 7200 seconds" (Amazon EC2 API Reference, SpotCapacityRebalance,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotCapacityRebalance.html).
# DescribeSpotFleetRequests returns the configuration the fleet was requested with. An
# invalid configuration is refused with InvalidSpotFleetRequestConfig, "The Spot Fleet
# request configuration is not valid" (Error codes for the Amazon EC2 API,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), before
# anything is launched. Moto drops SpotMaintenanceStrategies. Here it is checked, kept
# with the fleet (``spot`` acts on it when a rebalance recommendation comes) and
# reported.
REPLACEMENT_STRATEGIES = ("launch", "launch-before-terminate")
TERMINATION_DELAY = (120, 7200)


def capacity_rebalance(fleet) -> dict | None:  # type: ignore[no-untyped-def,type-arg]
    """The fleet's CapacityRebalance ({"ReplacementStrategy", "TerminationDelay"}), if any."""
    return fleet.__dict__.get("_immutable_capacity_rebalance")


def patch_fleet_maintenance_strategies() -> None:
    import moto.ec2.models.spot_requests as spot_models
    import moto.ec2.responses.spot_fleets as fleet_responses
    from moto.ec2.exceptions import EC2ClientError

    fleet_cls = spot_models.SpotFleetRequest
    original_config = fleet_cls.spot_fleet_request_config
    original_request = fleet_responses.SpotFleets.request_spot_fleet
    prefix = "SpotFleetRequestConfig.SpotMaintenanceStrategies.CapacityRebalance"

    def invalid(name: str, value: object, why: str) -> EC2ClientError:
        return EC2ClientError("InvalidSpotFleetRequestConfig", f"Parameter: {prefix}.{name} ({value}) is invalid: {why}.")

    def checked(config: dict) -> dict | None:  # type: ignore[type-arg]
        rebalance = ((config.get("SpotMaintenanceStrategies") or {}).get("CapacityRebalance")) or None
        if rebalance is None:
            return None
        strategy = rebalance.get("ReplacementStrategy")
        delay = rebalance.get("TerminationDelay")
        if strategy is not None and strategy not in REPLACEMENT_STRATEGIES:
            raise invalid("ReplacementStrategy", strategy, "valid values are launch | launch-before-terminate")
        if strategy is not None and (config.get("Type") or "maintain") != "maintain":
            raise invalid("ReplacementStrategy", strategy, "only available for fleets of type maintain")
        if strategy == "launch-before-terminate" and delay is None:
            raise invalid("TerminationDelay", delay, "required when ReplacementStrategy is launch-before-terminate")
        if delay is not None and strategy != "launch-before-terminate":
            raise invalid("TerminationDelay", delay, "not valid unless ReplacementStrategy is launch-before-terminate")
        if delay is not None and not TERMINATION_DELAY[0] <= int(delay) <= TERMINATION_DELAY[1]:
            raise invalid("TerminationDelay", delay, "the minimum is 120 seconds, the maximum 7200")
        kept: dict[str, object] = {}
        if strategy is not None:
            kept["ReplacementStrategy"] = strategy
        if delay is not None:
            kept["TerminationDelay"] = int(delay)
        return kept

    def request_spot_fleet(self):  # type: ignore[no-untyped-def]
        rebalance = checked(self._get_param("SpotFleetRequestConfig", {}) or {})
        result = original_request(self)
        fleet = self.ec2_backend.spot_fleet_requests.get((result.result or {}).get("SpotFleetRequestId"))
        if fleet is not None and rebalance is not None:
            fleet.__dict__["_immutable_capacity_rebalance"] = rebalance
        return result

    def spot_fleet_request_config(self):  # type: ignore[no-untyped-def]
        config = original_config.fget(self)
        rebalance = capacity_rebalance(self)
        if rebalance is not None:
            config["SpotMaintenanceStrategies"] = {"CapacityRebalance": dict(rebalance)}
        return config

    fleet_responses.SpotFleets.request_spot_fleet = request_spot_fleet
    fleet_cls.spot_fleet_request_config = property(spot_fleet_request_config)


# A CloudWatch alarm starts in INSUFFICIENT_DATA, and an update keeps its state.
#
# AWS: "When this operation creates an alarm, the alarm state is immediately set to
# INSUFFICIENT_DATA. The alarm is then evaluated and its state is set appropriately.
# ... When you update an existing alarm, its state is left unchanged, but the update
# completely overwrites the previous configuration of the alarm" (Amazon CloudWatch API
# Reference, PutMetricAlarm,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html;
# PutCompositeAlarm says the same). Moto creates every alarm in OK, and an update
# replaces the alarm with a new one in OK: a client gating on an alarm would see a
# fresh (or just reconfigured) alarm as healthy. Here a new alarm is INSUFFICIENT_DATA
# with AWS's reason "Unchecked: Initial alarm creation", and an update keeps the state,
# its reason, time stamp and history. No metric is evaluated here: an alarm changes
# state only by SetAlarmState ("The alarm returns to its actual state (often within
# seconds)" on AWS, SetAlarmState,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_SetAlarmState.html;
# there is no actual state to return to here).
def patch_alarm_initial_state() -> None:
    import moto.cloudwatch.models as cloudwatch_models

    backend_cls = cloudwatch_models.CloudWatchBackend
    original = backend_cls.put_metric_alarm

    def put_metric_alarm(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        previous = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if previous is not None and previous is not alarm:
            for attribute in ("state_value", "state_reason", "state_reason_data", "state_updated_timestamp", "history"):
                setattr(alarm, attribute, getattr(previous, attribute))
        elif previous is None:
            alarm.state_value = "INSUFFICIENT_DATA"
            alarm.state_reason = "Unchecked: Initial alarm creation"
        return alarm

    backend_cls.put_metric_alarm = put_metric_alarm


# The instance profile and metadata options an instance is launched with, from
# RunInstances, its launch template or a Spot Fleet's launch specification; and a Spot
# Fleet's On-Demand part launched On-Demand.
#
# AWS: RunInstances' LaunchTemplate is "The launch template to use to launch the
# instances. Any parameters that you specify in RunInstances override the same
# parameters in the launch template" (Amazon EC2 API Reference, RunInstances,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RunInstances.html), among
# them IamInstanceProfile and MetadataOptions (Amazon EC2 API Reference,
# RequestLaunchTemplateData,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RequestLaunchTemplateData.html);
# a Spot Fleet launches from its launch template configurations or launch
# specifications, which have an IamInstanceProfile too (Amazon EC2 API Reference,
# SpotFleetLaunchSpecification,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetLaunchSpecification.html).
# On instance tags in metadata: "You can also allow access to tags by specifying this in
# a launch template. Instances that are launched by using the template allow access to
# tags in the instance metadata" (Amazon EC2 User Guide, "View tags for your EC2
# instances using instance metadata",
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/work-with-tags-in-IMDS.html). A
# Spot Fleet's OnDemandTargetCapacity is "The number of On-Demand units to request"
# (Amazon EC2 API Reference, SpotFleetRequestConfigData,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_SpotFleetRequestConfigData.html):
# "you specify your desired target capacity and how much of that capacity must be
# On-Demand. The balance comprises Spot capacity" (Amazon EC2 User Guide, On-Demand in
# Spot Fleet, https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/on-demand-in-spot.html).
# An On-Demand instance has no InstanceLifecycle, which "Indicates whether this is a Spot
# Instance or a Scheduled Instance" (Amazon EC2 API Reference, Instance,
# https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Instance.html).
#
# Moto keeps a launch template version's data as it was given, but RunInstances takes
# from the template only its image, instance type, key, security groups, user data,
# block devices and tags, and associates an instance profile given to RunInstances with
# the first instance of the reservation only. A Spot Fleet copies the data of each
# template's latest version into a launch specification that keeps the instance
# profile's ARN (not a name) and drops the metadata options, and launches every instance
# as a Spot Instance with neither. Here:
#   - RunInstances applies the template's MetadataOptions and IamInstanceProfile when
#     the request gives none, and associates the profile with every instance launched;
#   - a fleet instance gets the metadata options and the instance profile (ARN or name)
#     of the launch specification or template data it was launched from (the template
#     version moto chose), replacements included;
#   - while a fleet's live On-Demand instances weigh less than its On-Demand target, the
#     instance it launches is On-Demand (moto still launches it through a Spot request,
#     which DescribeSpotInstanceRequests lists).
# An instance profile that does not exist leaves the instance without one (AWS refuses
# such a launch).
_FLEET_LAUNCH = threading.local()  # .state: (fleet launching, [On-Demand weight so far])
_SPEC_SOURCES = threading.local()  # .queue: the launch specification data being copied


def on_demand_weight(fleet) -> float:  # type: ignore[no-untyped-def]
    """The weighted capacity of the fleet's pending and running On-Demand instances."""
    return float(
        sum(
            instance_weight(fleet, r.instance)
            for r in live_requests(fleet)
            if r.instance.lifecycle != "spot"
        )
    )


def associate_profile(backend, instance_id: str, profile: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    from . import core

    name, arn = profile.get("Name"), profile.get("Arn")
    if not (name or arn) or instance_id in backend.iam_instance_profile_associations:
        return
    try:
        from moto.ec2.utils import filter_iam_instance_profiles

        found = filter_iam_instance_profiles(
            backend.account_id, partition=backend.partition,
            iam_instance_profile_arn=arn, iam_instance_profile_name=name,
        )
        if found is None:
            raise LookupError("no such instance profile")
        backend.associate_iam_instance_profile(
            instance_id=instance_id, iam_instance_profile_name=name, iam_instance_profile_arn=arn
        )
    except Exception as err:  # noqa: BLE001 - a profile that is not there: launched without one
        core.note(f"{instance_id} launched without instance profile {arn or name}: {err}")


def patch_run_instances_template_options() -> None:
    import moto.ec2.models.instances as instance_models

    original = instance_models.InstanceBackend.run_instances

    def run_instances(self, image_id, count, user_data, security_group_names, **kwargs):  # type: ignore[no-untyped-def]
        template: dict = {}  # type: ignore[type-arg]
        if kwargs.get("launch_template"):
            try:
                template = self._get_template_from_args(kwargs["launch_template"]).data or {}
            except Exception:  # noqa: BLE001 - moto refuses the unknown template itself
                template = {}
        if template.get("MetadataOptions") and not kwargs.get("metadata_options"):
            kwargs["metadata_options"] = dict(template["MetadataOptions"])
        reservation = original(self, image_id, count, user_data, security_group_names, **kwargs)
        instances = list(reservation.instances)
        requested = {
            "Name": kwargs.get("iam_instance_profile_name"),
            "Arn": kwargs.get("iam_instance_profile_arn"),
        }
        if requested["Name"] or requested["Arn"]:
            # Moto's RunInstances associates the first instance itself, after this.
            profile, targets = requested, instances[1:]
        else:
            profile, targets = dict(template.get("IamInstanceProfile") or {}), instances
        for instance in targets:
            associate_profile(self, instance.id, profile)
        return reservation

    instance_models.InstanceBackend.run_instances = run_instances


def patch_fleet_instance_options() -> None:
    import inspect

    import moto.ec2.models.instances as instance_models
    import moto.ec2.models.spot_requests as spot_models

    fleet_cls = spot_models.SpotFleetRequest
    spec_cls = spot_models.SpotFleetLaunchSpec
    original_fleet_init = fleet_cls.__init__
    original_spec_init = spec_cls.__init__
    original_create = fleet_cls.create_spot_requests
    original_request = spot_models.SpotRequestBackend.request_spot_instances
    original_launch = spot_models.SpotInstanceRequest.launch_instance
    fleet_signature = inspect.signature(original_fleet_init)

    def spec_sources(backend, launch_specs, configs) -> list:  # type: ignore[no-untyped-def,type-arg]
        """The data moto makes each launch specification of a fleet from, in its order."""
        sources = [dict(spec) for spec in launch_specs or []]
        for config in configs or []:
            spec = config.get("LaunchTemplateSpecification") or {}
            if "LaunchTemplateId" in spec:
                template = backend.get_launch_template(template_id=spec["LaunchTemplateId"])
            elif "LaunchTemplateName" in spec:
                template = backend.get_launch_template_by_name(name=spec["LaunchTemplateName"])
            else:
                continue
            sources.append(dict(template.latest_version().data))
        return sources

    def fleet_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        given = fleet_signature.bind(self, *args, **kwargs).arguments
        try:
            sources = spec_sources(
                given.get("ec2_backend"), given.get("launch_specs"), given.get("launch_template_config")
            )
        except Exception:  # noqa: BLE001 - moto refuses the unknown template itself
            sources = []
        on_demand = getattr(_REQUESTED, "on_demand", None)
        if on_demand is not None:
            self.__dict__["_immutable_on_demand_target"] = on_demand
        _SPEC_SOURCES.queue = sources
        try:
            original_fleet_init(self, *args, **kwargs)
        finally:
            _SPEC_SOURCES.queue = None

    def spec_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original_spec_init(self, *args, **kwargs)
        queue = getattr(_SPEC_SOURCES, "queue", None)
        source = queue.pop(0) if queue else {}
        self.__dict__["_immutable_profile"] = dict(source.get("IamInstanceProfile") or {})
        self.__dict__["_immutable_metadata_options"] = dict(source.get("MetadataOptions") or {})

    def create_spot_requests(self, weight_to_add):  # type: ignore[no-untyped-def]
        previous = getattr(_FLEET_LAUNCH, "state", None)
        _FLEET_LAUNCH.state = (self, [on_demand_weight(self)])
        try:
            return original_create(self, weight_to_add)
        finally:
            _FLEET_LAUNCH.state = previous

    def request_spot_instances(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        state = getattr(_FLEET_LAUNCH, "state", None)
        fleet = state[0] if state is not None else None
        if fleet is not None and kwargs.get("launch_spec") is None and kwargs.get("spot_fleet_id") == fleet.id:
            # Moto passes the specification's own tag dictionary: it tells which one.
            tags = kwargs.get("tags")
            kwargs["launch_spec"] = next((s for s in fleet.launch_specs if s.tag_specifications is tags), None)
        return original_request(self, *args, **kwargs)

    def launch_instance(self):  # type: ignore[no-untyped-def]
        instance = original_launch(self)
        spec = getattr(self, "launch_spec", None)
        if not self.spot_fleet_id:
            return instance
        if spec is not None:
            options = spec.__dict__.get("_immutable_metadata_options")
            if options:
                instance.metadata_options = instance_models.MetadataOptions(options)
            associate_profile(self.ec2_backend, instance.id, spec.__dict__.get("_immutable_profile") or {})
        state = getattr(_FLEET_LAUNCH, "state", None)
        if state is not None and state[0].id == self.spot_fleet_id:
            fleet, counted = state
            if counted[0] < float(fleet.__dict__.get("_immutable_on_demand_target", 0) or 0):
                instance.lifecycle = None
                weight = spec.weighted_capacity if spec is not None else instance_weight(fleet, instance)
                counted[0] += float(weight)
        return instance

    fleet_cls.__init__ = fleet_init
    spec_cls.__init__ = spec_init
    fleet_cls.create_spot_requests = create_spot_requests
    spot_models.SpotRequestBackend.request_spot_instances = request_spot_instances
    spot_models.SpotInstanceRequest.launch_instance = launch_instance


PATCHES: list[tuple[str, Callable[[], None]]] = [
    ("account id from access key", patch_account_from_access_key),
    ("fleet id tag on Spot Fleet instances", patch_fleet_instance_tag),
    ("client tokens on RequestSpotFleet, RunInstances, CreateLaunchTemplate", patch_client_tokens),
    ("unique AMI names on CreateImage", patch_unique_ami_names),
    ("cancelling unknown Spot Fleet requests", patch_cancel_unknown_fleets),
    ("tags of Spot Fleet requests after their creation", patch_fleet_request_tags),
    ("launch template versions based on a source version", patch_launch_template_source_version),
    ("EBS-backed images from CreateImage, kept by CopyImage", patch_created_images_are_ebs),
    ("owners and filters with image ids on DescribeImages", patch_describe_images_by_id_and_filters),
    ("image descriptions on ModifyImageAttribute", patch_image_description),
    ("On-Demand capacity of Spot Fleet requests", patch_fleet_on_demand_capacity),
    ("idempotent TerminateInstances", patch_terminate_idempotent),
    ("fulfilled capacity of Spot Fleet requests, ModifySpotFleetRequest's excess policy", patch_fleet_fulfilled_capacity),
    ("maintenance strategies of Spot Fleet requests", patch_fleet_maintenance_strategies),
    ("initial and updated state of CloudWatch alarms", patch_alarm_initial_state),
    ("instance profile and metadata options of RunInstances from a launch template", patch_run_instances_template_options),
    ("instance profile, metadata options and On-Demand part of Spot Fleet instances", patch_fleet_instance_options),
]


def install() -> None:
    for _, patch in PATCHES:
        patch()
