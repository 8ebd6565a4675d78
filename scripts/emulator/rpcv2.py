"""The Smithy RPC v2 CBOR protocol, for the services whose current SDKs speak it and
moto does not: CloudWatch.

AWS SDKs generated from CloudWatch's current model (the Rust SDK's aws-sdk-cloudwatch
among them) call it with Smithy RPC v2 CBOR: "POST /service/{serviceName}/operation/
{operationName}", the header "Smithy-Protocol: rpc-v2-cbor", a CBOR body holding the
operation's input structure, and a CBOR answer with the same header; timestamps are
CBOR tag 1 (epoch seconds), blobs byte strings, and an error is answered with a map
whose "__type" names the error's shape ID (Smithy 2.0, "RPC v2 CBOR protocol",
https://smithy.io/2.0/additional-specs/protocols/smithy-rpc-v2.html). CloudWatch's
model is AWS-query compatible: its errors also carry the query error code and type in
the header "x-amzn-query-error: Code;Sender" (Smithy 2.0, "awsQueryCompatible trait",
https://smithy.io/2.0/aws/protocols/aws-query-protocol.html#aws-protocols-awsquerycompatible-trait).
The data is CBOR (RFC 8949, "Concise Binary Object Representation",
https://www.rfc-editor.org/rfc/rfc8949.html); the Rust SDK writes maps and lists of
indefinite length.

Moto answers CloudWatch in the query and the AWS JSON 1.0 protocols (both listed by
the service model), and fails a CBOR request (its path matches no CloudWatch route).
Here such a request is given to moto in JSON 1.0 (X-Amz-Target
"<targetPrefix>.<Operation>", the same members), and moto's JSON answer is written
back as CBOR, member by member after the operation's output shape in the botocore
service model: integers stay integers, doubles become CBOR floats, timestamps tag 1,
blobs byte strings. An operation without output answers an empty body. An error keeps
its status and headers (x-amzn-query-error among them), with a CBOR body of "__type"
and "message".

This wrapper is the innermost: accounting, throttling and holds see the request as
the client sent it (``core.classify`` reads the operation from the path).
"""

from __future__ import annotations

import base64
import io
import json
import math
import struct
import threading
from datetime import datetime, timezone
from typing import Any, Iterable

from . import core

PATH_PREFIX = "/service/"
CBOR_TYPE = "application/cbor"
JSON_TYPE = "application/x-amz-json-1.0"
PROTOCOL_HEADER = "rpc-v2-cbor"

# The serviceName of the path (the service shape's name, botocore's targetPrefix) ->
# the botocore service model.
SERVICES = {"GraniteServiceVersion20100801": "cloudwatch"}


# ----------------------------------------------------------------------------------
# CBOR (RFC 8949)
# ----------------------------------------------------------------------------------


class Tagged:
    """A tagged data item (major type 6) other than a timestamp."""

    def __init__(self, tag: int, value: Any) -> None:
        self.tag = tag
        self.value = value


class Timestamp:
    """Tag 1: epoch-based date/time, as Smithy writes timestamps."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)


_BREAK = object()


class Decoder:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, n: int) -> bytes:
        if self.at + n > len(self.data):
            raise ValueError("CBOR data ends early")
        chunk = self.data[self.at:self.at + n]
        self.at += n
        return chunk

    def argument(self, info: int) -> int | None:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            size = 1 << (info - 24)
            return int.from_bytes(self.take(size), "big")
        if info == 31:
            return None  # indefinite length
        raise ValueError(f"CBOR: reserved additional information {info}")

    def item(self) -> Any:
        initial = self.take(1)[0]
        major, info = initial >> 5, initial & 0x1F
        if major == 7:
            return self.simple(info)
        argument = self.argument(info)
        if major == 0:
            return argument
        if major == 1:
            return -1 - argument  # type: ignore[operator]
        if major in (2, 3):
            if argument is None:
                chunks = []
                while True:
                    chunk = self.item()
                    if chunk is _BREAK:
                        break
                    chunks.append(chunk)
                return b"".join(chunks) if major == 2 else "".join(chunks)
            raw = self.take(argument)
            return raw if major == 2 else raw.decode("utf-8")
        if major == 4:
            items = []
            while argument is None or len(items) < argument:
                value = self.item()
                if value is _BREAK and argument is None:
                    break
                items.append(value)
            return items
        if major == 5:
            mapping: dict[Any, Any] = {}
            count = 0
            while argument is None or count < argument:
                key = self.item()
                if key is _BREAK and argument is None:
                    break
                mapping[key] = self.item()
                count += 1
            return mapping
        # major 6: a tag
        value = self.item()
        if argument == 1:
            return Timestamp(value)
        return Tagged(argument, value)  # type: ignore[arg-type]

    def simple(self, info: int) -> Any:
        if info == 20:
            return False
        if info == 21:
            return True
        if info in (22, 23):
            return None
        if info == 25:
            return struct.unpack(">e", self.take(2))[0]
        if info == 26:
            return struct.unpack(">f", self.take(4))[0]
        if info == 27:
            return struct.unpack(">d", self.take(8))[0]
        if info == 31:
            return _BREAK
        if info == 24:
            self.take(1)
            return None
        return None


def loads(data: bytes) -> Any:
    if not data:
        return None
    decoder = Decoder(data)
    value = decoder.item()
    if decoder.at != len(data):
        raise ValueError("CBOR: data after the first item")
    return value


def _head(out: io.BytesIO, major: int, argument: int) -> None:
    if argument < 24:
        out.write(bytes([(major << 5) | argument]))
    elif argument < 1 << 8:
        out.write(bytes([(major << 5) | 24, argument]))
    elif argument < 1 << 16:
        out.write(bytes([(major << 5) | 25]) + argument.to_bytes(2, "big"))
    elif argument < 1 << 32:
        out.write(bytes([(major << 5) | 26]) + argument.to_bytes(4, "big"))
    else:
        out.write(bytes([(major << 5) | 27]) + argument.to_bytes(8, "big"))


def _encode(out: io.BytesIO, value: Any) -> None:
    if value is None:
        out.write(b"\xf6")
    elif value is True:
        out.write(b"\xf5")
    elif value is False:
        out.write(b"\xf4")
    elif isinstance(value, int):
        if value >= 0:
            _head(out, 0, value)
        else:
            _head(out, 1, -1 - value)
    elif isinstance(value, float):
        out.write(b"\xfb" + struct.pack(">d", value))
    elif isinstance(value, Timestamp):
        _head(out, 6, 1)
        out.write(b"\xfb" + struct.pack(">d", value.seconds))
    elif isinstance(value, Tagged):
        _head(out, 6, value.tag)
        _encode(out, value.value)
    elif isinstance(value, (bytes, bytearray)):
        _head(out, 2, len(value))
        out.write(bytes(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        _head(out, 3, len(raw))
        out.write(raw)
    elif isinstance(value, (list, tuple)):
        _head(out, 4, len(value))
        for item in value:
            _encode(out, item)
    elif isinstance(value, dict):
        _head(out, 5, len(value))
        for key, item in value.items():
            _encode(out, key)
            _encode(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def dumps(value: Any) -> bytes:
    out = io.BytesIO()
    _encode(out, value)
    return out.getvalue()


# ----------------------------------------------------------------------------------
# Between CBOR and JSON, after the service model
# ----------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


def service_model(name: str) -> Any:
    with _MODELS_LOCK:
        model = _MODELS.get(name)
        if model is None:
            import botocore.session

            model = _MODELS[name] = botocore.session.get_session().get_service_model(name)
        return model


def to_json(value: Any) -> Any:
    """A decoded CBOR input as the JSON protocol writes it: timestamps in epoch
    seconds, blobs in base64."""
    if isinstance(value, Timestamp):
        return value.seconds
    if isinstance(value, Tagged):
        return to_json(value.value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items() if v is not None}
    return value


def epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def to_cbor(shape: Any, value: Any) -> Any:
    """A JSON output value as CBOR data of `shape`."""
    if value is None or shape is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return value
        members = shape.members
        return {k: to_cbor(members.get(k), v) for k, v in value.items() if v is not None}
    if kind == "list":
        return [to_cbor(shape.member, v) for v in value] if isinstance(value, list) else value
    if kind == "map":
        if not isinstance(value, dict):
            return value
        return {k: to_cbor(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        return Timestamp(epoch(value))
    if kind == "blob":
        return base64.b64decode(value) if isinstance(value, str) else value
    if kind in ("integer", "long", "short", "byte"):
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if kind in ("float", "double"):
        if isinstance(value, str):
            return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    return value


# ----------------------------------------------------------------------------------
# The wrapper
# ----------------------------------------------------------------------------------


def operation_of(environ: dict) -> tuple[str, str] | None:  # type: ignore[type-arg]
    """(serviceName, operationName) of an RPC v2 CBOR request, or None."""
    path = environ.get("PATH_INFO", "")
    if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PATH_PREFIX):
        return None
    parts = path[len(PATH_PREFIX):].split("/")
    if len(parts) != 3 or parts[1] != "operation" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def translate(environ, start_response, account, key, following) -> Iterable[bytes]:  # type: ignore[no-untyped-def]
    found = operation_of(environ)
    if found is None or found[0] not in SERVICES:
        return following(environ, start_response)
    target_prefix, operation_name = found
    model = service_model(SERVICES[target_prefix])
    try:
        operation = model.operation_model(operation_name)
    except Exception:  # noqa: BLE001 - an unknown operation: answered as an error below
        operation = None
    if operation is None:
        return error(start_response, "404 Not Found", "UnknownOperationException", f"no operation {operation_name}")
    try:
        decoded = loads(core.read_body(environ))
    except (ValueError, UnicodeDecodeError) as err:
        return error(start_response, "400 Bad Request", "SerializationException", f"the body is not CBOR: {err}")
    body = json.dumps(to_json(decoded if isinstance(decoded, dict) else {})).encode("utf-8")
    environ["PATH_INFO"] = "/"
    environ["RAW_URI"] = environ["REQUEST_URI"] = "/"
    environ["CONTENT_TYPE"] = JSON_TYPE
    environ["CONTENT_LENGTH"] = str(len(body))
    environ["HTTP_X_AMZ_TARGET"] = f"{target_prefix}.{operation_name}"
    environ["wsgi.input"] = io.BytesIO(body)

    captured: dict[str, Any] = {}
    written: list[bytes] = []

    def capture(status: str, headers, exc_info=None):  # type: ignore[no-untyped-def]
        captured["status"], captured["headers"] = status, list(headers)
        return written.append

    response = following(environ, capture)
    try:
        answer = b"".join(written) + b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    status = captured.get("status", "500 Internal Server Error")
    headers = [
        (name, value) for name, value in captured.get("headers", [])
        if name.lower() not in ("content-type", "content-length", "smithy-protocol")
    ]
    if not status.startswith("2"):
        try:
            payload = json.loads(answer.decode("utf-8")) if answer.strip() else {}
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        error_type = payload.get("__type") or dict((n.lower(), v) for n, v in headers).get("x-amzn-errortype", "")
        message = payload.get("message") or payload.get("Message") or ""
        return respond(start_response, status, headers, dumps({"__type": error_type, "message": message}))
    if operation.output_shape is None:
        return respond(start_response, status, headers, b"")
    payload = json.loads(answer.decode("utf-8")) if answer.strip() else {}
    return respond(start_response, status, headers, dumps(to_cbor(operation.output_shape, payload)))


def respond(start_response, status: str, headers: list[tuple[str, str]], body: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    headers = headers + [("Smithy-Protocol", PROTOCOL_HEADER), ("Content-Length", str(len(body)))]
    if body:
        headers.append(("Content-Type", CBOR_TYPE))
    start_response(status, headers)
    return [body]


def error(start_response, status: str, code: str, message: str) -> list[bytes]:  # type: ignore[no-untyped-def]
    return respond(start_response, status, [], dumps({"__type": code, "message": message}))


def install() -> None:
    core.wrap(core.RANK_PROTOCOLS, "Smithy RPC v2 CBOR", translate)
