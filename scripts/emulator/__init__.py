"""The local AWS emulator of the end-to-end tests: moto in server mode on 127.0.0.1,
made to behave like AWS where the provider's behaviour depends on it.

Modules, in the order they are installed:

    core        request classification, the server, routes and wrappers
    performance speed-ups of moto that change no answer (estates of 1,000 apps)
    fixes       corrections of moto where it answers otherwise than AWS (always on)
    accounting  requests counted and timed per account (/_immutable/requests)
    holds       requests held at an exact point for crash tests (/_immutable/hold)
    switches    behaviours switched on per account, the scaled clock
                (/_immutable/behaviour)
    permissions actions denied per account (the ``deny`` behaviour)
    throttling  EC2's and ELBv2's per-account request token buckets (/_immutable/throttled)
    elb         target health (from tags, or timed as an ALB computes it) and draining
    spot        Spot interruptions, fleets and capacity (/_immutable/spot)
    imds        per-instance IMDSv2: metadata, interruption notices, tags, instance
                profile credentials (/_immutable/imds)
    rpcv2       the Smithy RPC v2 CBOR protocol of current CloudWatch clients
    prices      Spot prices set per pool, and the AWS Price List's GetProducts
                with sample On-Demand prices (/_immutable/prices)

Every module that changes an answer says what AWS does and cites where AWS documents
it. Run with ``python -m emulator`` (``scripts/local-aws serve`` does).
"""

from . import accounting, elb, fixes, holds, imds, performance, permissions, prices, rpcv2, spot, switches, throttling

MODULES = [
    performance,
    fixes,
    accounting,
    holds,
    switches,
    permissions,
    throttling,
    elb,
    spot,
    imds,
    rpcv2,
    prices,
]
