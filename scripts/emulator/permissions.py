"""Actions the caller is not allowed to call, per account (``switches``: ``deny``), so
that a test can take a permission away, e.g. {"deny": ["pricing:GetProducts"]}.

A denied request does not reach moto; it is answered as AWS answers a request that no
policy allows: a message naming the principal, the action and the reason, "User: <arn>
is not authorized to perform: <service>:<Action> because no identity-based policy
allows the <service>:<Action> action" (the form the AWS Identity and Access
Management User Guide shows in "Troubleshoot access denied error messages",
https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html), in
the error form of the request's protocol:

  - EC2 (query): HTTP 403, code UnauthorizedOperation, "You are not authorized to
    perform this operation." followed by that sentence (Amazon EC2 API Reference,
    "Error codes for the Amazon EC2 API",
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html:
    UnauthorizedOperation, "You are not authorized to perform this operation");
  - other query APIs (ELBv2, IAM, STS): HTTP 403, code AccessDenied, type Sender;
  - JSON APIs (X-Amz-Target, the Price List among them): HTTP 400 with
    {"__type": "AccessDeniedException", "Message": ...} and the header
    x-amzn-ErrorType (the AWS Price List API Reference lists AccessDeniedException,
    HTTP status code 400, among the errors of GetProducts,
    https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html);
  - Smithy RPC v2 CBOR (CloudWatch, see ``rpcv2``): HTTP 403, a CBOR body of
    "__type" and "message", and x-amzn-query-error "AccessDenied;Sender".

The denial is checked after accounting (a denied request was made, and is counted)
and before throttling and moto.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Iterable
from xml.sax.saxutils import escape

from . import core, rpcv2, switches

SETTING = "deny"
RANK = core.RANK_THROTTLING - 5


def _check(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(v, str) and ":" in v for v in value):
        return 'must be a list of "<service>:<Action>", e.g. ["pricing:GetProducts"]'
    return None


def message(account: str, key: str) -> str:
    return (
        f"User: arn:aws:iam::{account}:user/immutable-tests is not authorized to perform: {key} "
        f"because no identity-based policy allows the {key} action"
    )


def refuse(environ: dict, start_response, account: str, key: str) -> list[bytes]:  # type: ignore[no-untyped-def,type-arg]
    service = key.split(":", 1)[0]
    text = message(account, key)
    request_id = str(uuid.uuid4())
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": "AccessDeniedException", "Message": text}).encode("utf-8")
        start_response(
            "400 Bad Request",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", "AccessDeniedException"),
                ("x-amzn-RequestId", request_id),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]
    if rpcv2.operation_of(environ) is not None:
        return rpcv2.respond(
            start_response,
            "403 Forbidden",
            [("x-amzn-query-error", "AccessDenied;Sender"), ("x-amzn-RequestId", request_id)],
            rpcv2.dumps({"__type": "AccessDenied", "message": text}),
        )
    if service == "ec2":
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>UnauthorizedOperation</Code>'
            f"<Message>You are not authorized to perform this operation. {escape(text)}</Message></Error></Errors>"
            f"<RequestID>{request_id}</RequestID></Response>"
        )
    else:
        xml = (
            "<ErrorResponse>\n  <Error>\n    <Type>Sender</Type>\n    <Code>AccessDenied</Code>\n"
            f"    <Message>{escape(text)}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n"
        )
    return core.answer_raw(start_response, "403 Forbidden", "text/xml", xml.encode("utf-8"))


def deny(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    denied = switches.setting(account, SETTING)
    if denied and key in denied:
        return refuse(environ, start_response, account, key)
    return following(environ, start_response)


def install() -> None:
    switches.declare(SETTING, [], _check)
    core.wrap(RANK, "denied permissions", deny)
