"""Prices: Spot prices that tests can set per pool, and the AWS Price List Query API
(GetProducts) that moto lacks, with sample On-Demand prices that tests can set too.

Spot prices
-----------
Moto answers DescribeSpotPriceHistory with every offered pool of the instance types
at the fixed price 0.00001, labelled "Linux/UNIX (Amazon VPC)", ignoring the product
descriptions, the time range and pagination. AWS: "When you specify a start and end
time, the operation returns the prices of the instance types within that time range.
It also returns the last price change before the start time, which is the effective
price as of the start time"; without an end time the range runs to now; results are
paged with MaxResults (at most 1000) and NextToken (Amazon EC2 API Reference,
DescribeSpotPriceHistory,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeSpotPriceHistory.html).
Here each pool of the account has a history of price changes:

    POST /_immutable/prices/spot?account=ID
         [{"instance_type": "t3.small", "zone": "eu-west-1a", "price": "0.0068",
           "product_description": "Linux/UNIX" (the default), "seconds_ago": 0}, ...]
         -> records each price change, made `seconds_ago` real seconds ago

and DescribeSpotPriceHistory answers, for each pool of the asked instance types
(every zone moto offers them in, and every pool with a recorded change) and product
descriptions ("Linux/UNIX" when none is asked for): the changes in the time range and
the last one before its start, newest first, filtered by the availability-zone,
instance-type and product-description filters and the AvailabilityZone parameter,
and paged. A pool without a recorded change answers as moto does (0.00001, in effect
since 2006).

On-Demand prices: the Price List Query API
------------------------------------------
AWS SDKs call GetProducts with the AWS JSON 1.1 protocol: "POST /" with
"X-Amz-Target: AWSPriceListService.GetProducts" and a JSON body of ServiceCode,
Filters ([{"Type", "Field", "Value"}]), FormatVersion, NextToken and MaxResults (at
most 100); the answer is {"FormatVersion": "aws_v1", "PriceList": [...], "NextToken":
...} where every PriceList entry is a product and its terms as a JSON string (AWS
Price List API Reference, GetProducts and Filter,
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html,
https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_Filter.html).
Filter types: TERM_MATCH and EQUALS (the attribute equals the value), CONTAINS (the
value is part of it), ANY_OF and NONE_OF (the value is a comma-separated list).
A filter's field is a product attribute (instanceType, location, operatingSystem,
tenancy, preInstalledSw, capacitystatus, regionCode, ...) or ServiceCode.

The products are AmazonEC2 compute instances built from the table below and the
account's own prices:

    POST /_immutable/prices/on_demand?account=ID
         [{"instance_type": "t3.small", "region": "eu-west-1", "price": "0.0228",
           "operating_system": "Linux" (the default)}, ...]
         -> sets these On-Demand prices for the account (over the table's)
    GET  /_immutable/prices?account=ID    -> {"spot": [...], "on_demand": [...]}
    POST /_immutable/prices/reset?account=ID

Every price makes two products, as in AWS's list: capacitystatus "Used" (the
On-Demand price) and "AllocatedCapacityReservation" (0.0000000000: an instance that
runs in a Capacity Reservation is paid for by the reservation), both shared tenancy
without pre-installed software, so a reader that leaves out the capacitystatus filter
gets a second, wrong price.

The sample table (``SAMPLE_ON_DEMAND``): On-Demand prices of Linux on shared tenancy
in USD per hour, as AWS's public On-Demand price list gives them (Amazon EC2
On-Demand Pricing, https://aws.amazon.com/ec2/pricing/on-demand/), for the instance
types tests and examples use in US East (N. Virginia) and EU (Ireland), e.g. t3.small
0.0208 in us-east-1 and 0.0228 in eu-west-1, m5.large 0.096 and 0.107. Prices change;
these are samples for the emulator, not a reference. Only those two regions have
products (their usage types carry the region's prefix, "" and "EU-").
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from . import core
from .spot import parse_time

PREFIX = "/_immutable/prices"
TARGET_PREFIX = "AWSPriceListService."
JSON_TYPE = "application/x-amz-json-1.1"

# (region, instance type) -> USD per hour, Linux, shared tenancy.
SAMPLE_ON_DEMAND: dict[tuple[str, str], str] = {
    ("us-east-1", "t3.nano"): "0.0052",
    ("us-east-1", "t3.micro"): "0.0104",
    ("us-east-1", "t3.small"): "0.0208",
    ("us-east-1", "t3.medium"): "0.0416",
    ("us-east-1", "t3a.micro"): "0.0094",
    ("us-east-1", "t3a.small"): "0.0188",
    ("us-east-1", "t3a.medium"): "0.0376",
    ("us-east-1", "m5.large"): "0.096",
    ("us-east-1", "c5.large"): "0.085",
    ("eu-west-1", "t3.nano"): "0.0057",
    ("eu-west-1", "t3.micro"): "0.0114",
    ("eu-west-1", "t3.small"): "0.0228",
    ("eu-west-1", "t3.medium"): "0.0456",
    ("eu-west-1", "t3a.micro"): "0.0102",
    ("eu-west-1", "t3a.small"): "0.0204",
    ("eu-west-1", "t3a.medium"): "0.0408",
    ("eu-west-1", "m5.large"): "0.107",
    ("eu-west-1", "c5.large"): "0.096",
}

# The Price List's location of each region the emulator prices.
LOCATIONS = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "EU (Ireland)"}
USAGE_PREFIX = {"us-east-1": "", "eu-west-1": "EU-"}

FILTER_TYPES = ("TERM_MATCH", "EQUALS", "CONTAINS", "ANY_OF", "NONE_OF")
DEFAULT_DESCRIPTION = "Linux/UNIX"
# Moto's own answer for a pool without a recorded change.
STOCK_PRICE = "0.00001"
STOCK_SINCE = datetime(2006, 1, 2, 15, 4, 5, tzinfo=timezone.utc)
ON_DEMAND_TERM = "JRTCKXETXF"
HOURLY_RATE = "6YS6EN2CT7"

LOCK = threading.Lock()
# account -> (region, instance type, zone, product description) -> [(epoch, price)]
SPOT: dict[str, dict[tuple[str, str, str, str], list[tuple[float, str]]]] = {}
# account -> (region, instance type, operating system) -> price
ON_DEMAND: dict[str, dict[tuple[str, str, str], str]] = {}


def valid_price(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return Decimal(value) >= 0 and value.replace(".", "", 1).isdigit()
    except InvalidOperation:
        return False


def region_of_zone(zone: str) -> str:
    return zone.rstrip("abcdefghijklmnopqrstuvwxyz")


# ----------------------------------------------------------------------------------
# DescribeSpotPriceHistory
# ----------------------------------------------------------------------------------


def history(account: str, region: str, instance_types: list[str], descriptions: list[str]) -> list[dict[str, Any]]:
    """Every pool's changes, newest first: (type, zone, description, when, price)."""
    from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS

    offered = INSTANCE_TYPE_OFFERINGS["availability-zone"].get(region, [])
    with LOCK:
        recorded = {k: list(v) for k, v in SPOT.get(account, {}).items() if k[0] == region}
    pools: set[tuple[str, str, str]] = set()
    for offering in offered:
        if not instance_types or offering["InstanceType"] in instance_types:
            for description in descriptions:
                pools.add((offering["InstanceType"], offering["Location"], description))
    for _, instance_type, zone, description in recorded:
        if (not instance_types or instance_type in instance_types) and description in descriptions:
            pools.add((instance_type, zone, description))
    entries = []
    for instance_type, zone, description in pools:
        changes = recorded.get((region, instance_type, zone, description))
        if not changes:
            changes = [(STOCK_SINCE.timestamp(), STOCK_PRICE)]
        for at, price in changes:
            entries.append({
                "InstanceType": instance_type,
                "AvailabilityZone": zone,
                "ProductDescription": description,
                "SpotPrice": price,
                "Timestamp": datetime.fromtimestamp(at, timezone.utc),
            })
    return entries


def in_range(entries: list[dict[str, Any]], start: datetime | None, end: datetime | None) -> list[dict[str, Any]]:
    """The changes between start and end, and each pool's last change before start."""
    by_pool: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for entry in entries:
        pool = (entry["InstanceType"], entry["AvailabilityZone"], entry["ProductDescription"])
        by_pool.setdefault(pool, []).append(entry)
    chosen = []
    for changes in by_pool.values():
        changes.sort(key=lambda e: e["Timestamp"])
        if end is not None:
            changes = [e for e in changes if e["Timestamp"] <= end]
        if start is None:
            chosen.extend(changes)
            continue
        before = [e for e in changes if e["Timestamp"] < start]
        chosen.extend(before[-1:])
        chosen.extend(e for e in changes if e["Timestamp"] >= start)
    chosen.sort(key=lambda e: (-e["Timestamp"].timestamp(), e["InstanceType"], e["AvailabilityZone"]))
    return chosen


def patch_spot_price_history() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import EC2ClientError
    import moto.ec2.responses.spot_instances as spot_responses

    def describe_spot_price_history(self):  # type: ignore[no-untyped-def]
        instance_types = self._get_param("InstanceTypes", []) or []
        descriptions = self._get_param("ProductDescriptions", []) or [DEFAULT_DESCRIPTION]
        filters = self._filters_from_querystring() or {}
        zone = self._get_param("AvailabilityZone")
        limit = self._get_int_param("MaxResults") or 1000
        if not 0 < limit <= 1000:
            raise EC2ClientError("InvalidParameterValue", f"Invalid value '{limit}' for maxResults")
        times = {}
        for name in ("StartTime", "EndTime"):
            text = self._get_param(name)
            try:
                times[name] = parse_time(str(text)) if text else None
            except ValueError:
                raise EC2ClientError("InvalidParameterValue", f"Invalid value '{text}' for {name}") from None
        token = self._get_param("NextToken")
        offset = int(token) if token and str(token).isdigit() else 0
        entries = history(self.current_account, self.region, list(instance_types), list(descriptions))

        def kept(entry: dict[str, Any]) -> bool:
            if zone and entry["AvailabilityZone"] != zone:
                return False
            for name, field in (
                ("availability-zone", "AvailabilityZone"),
                ("instance-type", "InstanceType"),
                ("product-description", "ProductDescription"),
            ):
                if name in filters and entry[field] not in filters[name]:
                    return False
            return True

        chosen = in_range([e for e in entries if kept(e)], times["StartTime"], times["EndTime"])
        page = chosen[offset:offset + limit]
        result: dict[str, Any] = {"SpotPriceHistory": page}
        if offset + limit < len(chosen):
            result["NextToken"] = str(offset + limit)
        return ActionResult(result)

    spot_responses.SpotInstances.describe_spot_price_history = describe_spot_price_history


# ----------------------------------------------------------------------------------
# GetProducts
# ----------------------------------------------------------------------------------


def on_demand_table(account: str) -> dict[tuple[str, str, str], str]:
    table = {(region, instance_type, "Linux"): price for (region, instance_type), price in SAMPLE_ON_DEMAND.items()}
    with LOCK:
        table.update(ON_DEMAND.get(account, {}))
    return table


def product(region: str, instance_type: str, operating_system: str, price: str, capacity: str) -> dict[str, Any]:
    """One AmazonEC2 compute instance product and its On-Demand term, as the Price
    List writes them (abridged: AWS's carry more attributes, and Reserved terms)."""
    location = LOCATIONS[region]
    usage = f"{USAGE_PREFIX[region]}BoxUsage:{instance_type}"
    if capacity != "Used":
        usage = usage.replace("BoxUsage", "Reservation")
    sku = hashlib.sha256(f"{region} {instance_type} {operating_system} {capacity}".encode()).hexdigest()[:16].upper()
    usd = f"{Decimal(price):.10f}"
    what = "Reservation" if capacity == "AllocatedCapacityReservation" else "On Demand"
    return {
        "product": {
            "productFamily": "Compute Instance",
            "attributes": {
                "servicecode": "AmazonEC2",
                "servicename": "Amazon Elastic Compute Cloud",
                "location": location,
                "locationType": "AWS Region",
                "regionCode": region,
                "instanceType": instance_type,
                "operatingSystem": operating_system,
                "tenancy": "Shared",
                "preInstalledSw": "NA",
                "licenseModel": "No License required",
                "capacitystatus": capacity,
                "usagetype": usage,
                "operation": "RunInstances",
            },
            "sku": sku,
        },
        "serviceCode": "AmazonEC2",
        "terms": {
            "OnDemand": {
                f"{sku}.{ON_DEMAND_TERM}": {
                    "offerTermCode": ON_DEMAND_TERM,
                    "sku": sku,
                    "effectiveDate": "2025-01-01T00:00:00Z",
                    "priceDimensions": {
                        f"{sku}.{ON_DEMAND_TERM}.{HOURLY_RATE}": {
                            "rateCode": f"{sku}.{ON_DEMAND_TERM}.{HOURLY_RATE}",
                            "description": f"${Decimal(price).normalize():f} per {what} {operating_system} {instance_type} Instance Hour",
                            "beginRange": "0",
                            "endRange": "Inf",
                            "unit": "Hrs",
                            "pricePerUnit": {"USD": usd},
                            "appliesTo": [],
                        }
                    },
                    "termAttributes": {},
                }
            }
        },
        "version": "20250101000000",
        "publicationDate": "2025-01-01T00:00:00Z",
    }


def products(account: str) -> list[dict[str, Any]]:
    found = []
    for (region, instance_type, operating_system), price in sorted(on_demand_table(account).items()):
        found.append(product(region, instance_type, operating_system, price, "Used"))
        found.append(product(region, instance_type, operating_system, "0", "AllocatedCapacityReservation"))
    return found


def matches(item: dict[str, Any], kind: str, field: str, value: str) -> bool:
    if field == "ServiceCode":
        actual: Any = item["serviceCode"]
    else:
        actual = item["product"]["attributes"].get(field)
    if kind == "NONE_OF":
        return actual is None or actual not in [v.strip() for v in value.split(",")]
    if actual is None:
        return False
    if kind in ("TERM_MATCH", "EQUALS"):
        return bool(actual == value)
    if kind == "CONTAINS":
        return value in actual
    return actual in [v.strip() for v in value.split(",")]  # ANY_OF


class ClientError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def get_products(account: str, request: dict[str, Any]) -> dict[str, Any]:
    service = request.get("ServiceCode")
    if not isinstance(service, str) or not service:
        raise ClientError("InvalidParameterException", "ServiceCode is required")
    version = request.get("FormatVersion", "aws_v1")
    if version != "aws_v1":
        raise ClientError("InvalidParameterException", f"Invalid FormatVersion: {version}")
    limit = request.get("MaxResults", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ClientError("InvalidParameterException", "MaxResults must be between 1 and 100")
    filters = request.get("Filters") or []
    if not isinstance(filters, list):
        raise ClientError("InvalidParameterException", "Filters must be a list")
    for f in filters:
        if not isinstance(f, dict) or f.get("Type") not in FILTER_TYPES or not f.get("Field") or "Value" not in f:
            raise ClientError("InvalidParameterException", f"Invalid filter: {json.dumps(f)}")
    token = request.get("NextToken")
    if token is not None and not (isinstance(token, str) and token.isdigit()):
        raise ClientError("InvalidNextTokenException", "The NextToken is not valid")
    offset = int(token) if token else 0
    if service != "AmazonEC2":
        return {"FormatVersion": "aws_v1", "PriceList": []}
    chosen = [
        item for item in products(account)
        if all(matches(item, f["Type"], f["Field"], str(f["Value"])) for f in filters)
    ]
    page = chosen[offset:offset + limit]
    answer: dict[str, Any] = {"FormatVersion": "aws_v1", "PriceList": [json.dumps(item) for item in page]}
    if offset + limit < len(chosen):
        answer["NextToken"] = str(offset + limit)
    return answer


def json_answer(start_response, status: str, payload: dict[str, Any], error: str | None = None) -> list[bytes]:  # type: ignore[no-untyped-def]
    body = json.dumps(payload).encode("utf-8")
    headers = [("Content-Type", JSON_TYPE), ("Content-Length", str(len(body))), ("x-amzn-RequestId", str(time.time_ns()))]
    if error:
        headers.append(("x-amzn-ErrorType", error))
    start_response(status, headers)
    return [body]


def price_list(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if not target.startswith(TARGET_PREFIX):
        return following(environ, start_response)
    operation = target[len(TARGET_PREFIX):]
    if operation != "GetProducts":
        message = f"{operation} is not served by the emulator (GetProducts is)"
        return json_answer(start_response, "400 Bad Request", {"__type": "UnknownOperationException", "Message": message}, "UnknownOperationException")
    try:
        request = core.json_body(environ)
        if not isinstance(request, dict):
            raise ClientError("SerializationException", "the body is not a JSON object")
        return json_answer(start_response, "200 OK", get_products(account, request))
    except ValueError as err:
        return json_answer(start_response, "400 Bad Request", {"__type": "SerializationException", "Message": str(err)}, "SerializationException")
    except ClientError as err:
        return json_answer(start_response, "400 Bad Request", {"__type": err.code, "Message": err.message}, err.code)


# ----------------------------------------------------------------------------------
# Control
# ----------------------------------------------------------------------------------


def check_spot(items: Any) -> str | None:
    if not isinstance(items, list):
        return "expected a list of spot prices"
    for item in items:
        if (
            not isinstance(item, dict)
            or set(item) - {"instance_type", "zone", "price", "product_description", "seconds_ago"}
            or not isinstance(item.get("instance_type"), str)
            or not isinstance(item.get("zone"), str)
            or not region_of_zone(item["zone"])
            or not valid_price(item.get("price"))
            or not isinstance(item.get("product_description", DEFAULT_DESCRIPTION), str)
            or isinstance(item.get("seconds_ago", 0), bool)
            or not isinstance(item.get("seconds_ago", 0), (int, float))
            or item.get("seconds_ago", 0) < 0
        ):
            return (
                'spot prices are {"instance_type": "t3.small", "zone": "eu-west-1a", "price": "0.0068", '
                f'"product_description": "Linux/UNIX", "seconds_ago": 0}} (the last two optional): {item!r}'
            )
    return None


def check_on_demand(items: Any) -> str | None:
    if not isinstance(items, list):
        return "expected a list of On-Demand prices"
    for item in items:
        if (
            not isinstance(item, dict)
            or set(item) - {"instance_type", "region", "price", "operating_system"}
            or not isinstance(item.get("instance_type"), str)
            or item.get("region") not in LOCATIONS
            or not valid_price(item.get("price"))
            or not isinstance(item.get("operating_system", "Linux"), str)
        ):
            return (
                'On-Demand prices are {"instance_type": "t3.small", "region": "eu-west-1", "price": "0.0228", '
                f'"operating_system": "Linux"}} (the last optional), in {", ".join(sorted(LOCATIONS))}: {item!r}'
            )
    return None


def listing(account: str) -> dict[str, Any]:
    with LOCK:
        spot = [
            {"region": r, "instance_type": t, "zone": z, "product_description": d, "price": p,
             "timestamp": datetime.fromtimestamp(at, timezone.utc).isoformat()}
            for (r, t, z, d), changes in sorted(SPOT.get(account, {}).items())
            for at, p in changes
        ]
    on_demand = [
        {"region": r, "instance_type": t, "operating_system": os, "price": p}
        for (r, t, os), p in sorted(on_demand_table(account).items())
    ]
    return {"spot": spot, "on_demand": on_demand}


def serve(environ, start_response) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    path = environ.get("PATH_INFO", "")
    method = environ.get("REQUEST_METHOD", "GET")
    account = core.query(environ).get("account", "")

    def answer(status: str, payload: object) -> list[bytes]:
        return core.answer(start_response, status, payload)

    if not account:
        return answer("400 Bad Request", {"error": "the account query parameter is required"})
    if path == PREFIX and method == "GET":
        return answer("200 OK", listing(account))
    if path == PREFIX + "/reset" and method == "POST":
        with LOCK:
            SPOT.pop(account, None)
            ON_DEMAND.pop(account, None)
        return answer("200 OK", listing(account))
    if path in (PREFIX + "/spot", PREFIX + "/on_demand") and method == "POST":
        try:
            items = core.json_body(environ)
        except ValueError as err:
            return answer("400 Bad Request", {"error": f"not JSON: {err}"})
        spot = path.endswith("/spot")
        problem = check_spot(items) if spot else check_on_demand(items)
        if problem:
            return answer("400 Bad Request", {"error": problem})
        now = time.time()
        with LOCK:
            for item in items:  # type: ignore[union-attr]
                if spot:
                    pool = (
                        region_of_zone(item["zone"]),
                        item["instance_type"],
                        item["zone"],
                        item.get("product_description", DEFAULT_DESCRIPTION),
                    )
                    changes = SPOT.setdefault(account, {}).setdefault(pool, [])
                    changes.append((now - float(item.get("seconds_ago", 0)), item["price"]))
                    changes.sort()
                else:
                    key = (item["region"], item["instance_type"], item.get("operating_system", "Linux"))
                    ON_DEMAND.setdefault(account, {})[key] = item["price"]
        return answer("200 OK", listing(account))
    return answer("404 Not Found", {"error": f"no {method} {path}"})


def install() -> None:
    patch_spot_price_history()
    core.route(PREFIX, serve)
    core.wrap(core.RANK_PROTOCOLS, "AWS Price List", price_list)
