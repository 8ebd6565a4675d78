"""Run moto's AWS emulator on 127.0.0.1 for the end-to-end tests.

Started by ``scripts/local-aws serve``. Binds a free port chosen by the OS, prints
exactly one line ``listening on http://127.0.0.1:PORT`` to stdout (optionally also
writing PORT to ``--port-file``), then serves until it receives SIGTERM/SIGINT or
its standard input reaches end-of-file. The last rule ties the server's lifetime to
the process that started it: a harness keeps our stdin open as a pipe, and when the
harness exits the pipe closes and so does the server.

Moto's behaviour is adjusted in-process in the "patches" section below; every
adjustment is one function registered in ``PATCHES``.

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


PATCHES: list[tuple[str, Callable[[], None]]] = [
    ("account id from access key", patch_account_from_access_key),
    ("target health from instance tags", patch_target_health_from_tags),
]


def apply_patches() -> None:
    for name, patch in PATCHES:
        patch()
        if VERBOSE:
            note(f"patched: {name}")


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

    app = DomainDispatcherApplication(create_backend_app)
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
