"""Runs the emulator: ``python -m emulator`` (from ``scripts/local-aws serve``).

Binds a free port chosen by the OS, prints exactly one line
``listening on http://127.0.0.1:PORT`` to stdout (optionally also writing PORT to
``--port-file``), then serves until it receives SIGTERM/SIGINT or its standard input
reaches end-of-file. The last rule ties the server's lifetime to the process that
started it: a harness keeps our stdin open as a pipe, and when the harness exits the
pipe closes and so does the server.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from . import MODULES, core


def install() -> None:
    for module in MODULES:
        module.install()
        if core.VERBOSE:
            core.note(f"installed: {module.__name__}")



def configure_logging() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    level = logging.INFO if core.VERBOSE else logging.ERROR
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
    parser = argparse.ArgumentParser(prog="emulator", description=__doc__.splitlines()[0])
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
    install()

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = core.Server(DomainDispatcherApplication(create_backend_app))
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
            core.note("server thread stopped unexpectedly")
            return 1

    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
