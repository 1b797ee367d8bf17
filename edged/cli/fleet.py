"""`edged fleet`: the operator's side: keys, signed config layers, operations commands, status.

It talks to the broker the kiosks use and nothing else: what it sends is exactly what a
backend job would send, built with the contract's own models and signing helper.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_TIMED_OUT = 3
EXIT_NO_REPLY = 4


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "fleet",
        help="operate a fleet over MQTT: keys, signed config layers, commands, status",
        description="Sign and push desired config layers, send operations commands and read "
        "every device's state, through the broker the kiosks use.",
    )
    sub = parser.add_subparsers(dest="fleet_command", required=True, metavar="ACTION")

    keygen = sub.add_parser("keygen", help="make an Ed25519 signing key (prints the public key)")
    keygen.add_argument("key_file", type=Path, help="where to write the private key (0600)")
    keygen.set_defaults(handler=_keygen)

    sign = sub.add_parser("sign", help="sign a config layer (TOML or JSON) for a scope")
    _layer_arguments(sign)
    sign.add_argument("--out", type=Path, help="write the envelope here instead of stdout")
    sign.set_defaults(handler=_sign)

    push = sub.add_parser("push", help="publish a config layer retained on its scope's cfg topic")
    push.add_argument(
        "file",
        type=Path,
        help="a signed envelope from `edged fleet sign`, or a layer file with --key/--version",
    )
    push.add_argument("--scope", required=True, help="fleet, site:SITE or device:SITE/DEVICE")
    push.add_argument("--key", type=Path, help="sign FILE as a layer with this key")
    push.add_argument("--version", type=int, help="the layer's version (with --key)")
    push.add_argument("--grace-s", type=int, help="health-gate time (with --key)")
    push.add_argument("--no-check", action="store_true", help="sign without checking (--key)")
    _broker_arguments(push)
    push.set_defaults(handler=_push)

    op = sub.add_parser("op", help="send a signed operations command to one device")
    op.add_argument("device", help="SITE/DEVICE")
    op.add_argument(
        "command", help="reprint, drawer.open, door.unlock, diagnostics, stock.resync, ..."
    )
    op.add_argument("args", nargs="*", metavar="NAME=VALUE", help="command arguments (JSON values)")
    op.add_argument("--key", type=Path, required=True, help="the operator's signing key")
    op.add_argument("--wait", action="store_true", help="wait for the final reply")
    op.add_argument("--timeout", type=float, default=60, help="seconds to wait (default 60)")
    _broker_arguments(op)
    op.set_defaults(handler=_op)

    status = sub.add_parser("status", help="one row per device from its retained state")
    status.add_argument("--site", default="+", help="only this site (default: every site)")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    _broker_arguments(status)
    status.set_defaults(handler=_status)


def _layer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("layer", type=Path, help="the partial config, TOML or JSON")
    parser.add_argument("--scope", required=True, help="fleet, site:SITE or device:SITE/DEVICE")
    parser.add_argument("--version", type=int, required=True, help="grows with every change")
    parser.add_argument("--key", type=Path, required=True, help="the operator's signing key")
    parser.add_argument("--grace-s", type=int, help="health-gate time on the device (s)")
    parser.add_argument(
        "--no-check",
        action="store_true",
        help="sign without checking the layer over the defaults (the device checks it anyway)",
    )


def _broker_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("broker")
    group.add_argument("--host", default="127.0.0.1", help="the broker (default: 127.0.0.1)")
    group.add_argument("--port", type=int, default=1883, help="its port (default: 1883)")
    group.add_argument("--mqtt311", action="store_true", help="MQTT 3.1.1 instead of 5")
    group.add_argument("--username", help="MQTT user name, if the broker wants one")
    group.add_argument("--password", help="its password")
    group.add_argument("--ca-file", type=Path, help="TLS: the broker's CA certificate")
    group.add_argument("--cert-file", type=Path, help="TLS: the operator's client certificate")
    group.add_argument("--key-file", type=Path, help="TLS: the client certificate's key")


def _options(args: argparse.Namespace) -> Any:
    from edged.fleetctl.broker import BrokerOptions

    return BrokerOptions(
        host=args.host,
        port=args.port,
        mqtt311=args.mqtt311,
        username=args.username,
        password=args.password,
        ca_file=args.ca_file,
        cert_file=args.cert_file,
        key_file=args.key_file,
    )


def _fail(message: str, code: int = EXIT_FAILED) -> int:
    print(f"edged fleet: {message}", file=sys.stderr)
    return code


def _keygen(args: argparse.Namespace) -> int:
    from edged.fleetctl.keys import KeyFileError, generate_key

    try:
        public = generate_key(args.key_file)
    except KeyFileError as exc:
        return _fail(str(exc))
    print(public)
    print(
        f"private key written to {args.key_file} (0600); put the line above in the "
        "devices' security.trusted_keys",
        file=sys.stderr,
    )
    return EXIT_OK


def _signed_layer(args: argparse.Namespace, file: Path) -> Any:
    """The signed `cfg.desired` envelope for a layer file; raises ValueError with the reason."""
    from edged.config import ConfigError
    from edged.config.layers import build_config
    from edged.fleetctl.keys import load_key
    from edged.fleetctl.messages import Scope, config_layer, read_layer

    scope = Scope.parse(args.scope)
    if args.version is None or args.version < 1:
        raise ValueError("--version N (1 or more) is required to sign a layer")
    layer = read_layer(file)
    if not args.no_check:
        try:
            build_config({}, {scope.kind: {"version": args.version, "layer": layer}})
        except ConfigError as exc:
            problems = "\n  ".join(exc.problems)
            raise ValueError(f"the layer is not a valid config:\n  {problems}") from None
    return scope, config_layer(scope, args.version, layer, load_key(args.key), grace_s=args.grace_s)


def _sign(args: argparse.Namespace) -> int:
    try:
        _scope, envelope = _signed_layer(args, args.layer)
    except ValueError as exc:
        return _fail(str(exc), EXIT_USAGE)
    data = envelope.to_bytes().decode()
    if args.out:
        args.out.write_text(data + "\n", encoding="utf-8")
    else:
        print(data)
    return EXIT_OK


def _push(args: argparse.Namespace) -> int:
    from edged.contract.envelope import EnvelopeError, decode_envelope
    from edged.fleetctl.broker import BrokerError, OperatorSession
    from edged.fleetctl.messages import Scope

    try:
        if args.key:
            scope, envelope = _signed_layer(args, args.file)
        else:
            scope = Scope.parse(args.scope)
            envelope = decode_envelope(args.file.read_bytes())
            if envelope.type != "cfg.desired" or not envelope.sig:
                raise ValueError(f"{args.file}: not a signed cfg.desired envelope")
            if envelope.device != scope.audience:
                raise ValueError(
                    f"{args.file}: signed for {envelope.device!r}, not for {scope} "
                    f"({scope.audience!r}): sign it for this scope"
                )
    except (ValueError, EnvelopeError, OSError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        with OperatorSession(_options(args), f"edged-fleet-push-{time.time_ns()}") as session:
            session.publish(scope.topic, envelope.to_bytes(), retain=True)
    except BrokerError as exc:
        return _fail(str(exc))
    print(f"pushed {scope} v{envelope.body.get('version')} to {scope.topic} (retained)")
    return EXIT_OK


def _parse_args(pairs: list[str]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ValueError(f"argument {pair!r}: write NAME=VALUE")
        try:
            parsed[name] = json.loads(value)
        except json.JSONDecodeError:
            parsed[name] = value
    return parsed


def _op(args: argparse.Namespace) -> int:
    from edged.contract.bodies import FINAL_OP_STATES, BodyError, OpReply, OpState, parse_body
    from edged.contract.envelope import EnvelopeError, decode_envelope
    from edged.contract.topics import PREFIX, Uplink
    from edged.fleetctl.broker import BrokerError, OperatorSession
    from edged.fleetctl.keys import KeyFileError, load_key
    from edged.fleetctl.messages import op_command, op_topic

    site, _, device = args.device.partition("/")
    if not site or not device:
        return _fail(f"device {args.device!r}: write SITE/DEVICE", EXIT_USAGE)
    try:
        envelope = op_command(
            site, device, args.command, _parse_args(args.args), load_key(args.key)
        )
    except (ValueError, KeyFileError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    request_id = str(envelope.body["request_id"])
    reply_topic = f"{PREFIX}/{site}/{device}/{Uplink.RESPONSE.value}/{request_id}"
    try:
        with OperatorSession(_options(args), f"edged-fleet-op-{request_id}") as session:
            if args.wait:
                session.subscribe(reply_topic)
            session.publish(op_topic(site, device), envelope.to_bytes())
            print(f"sent {args.command} as request {request_id}", file=sys.stderr)
            if not args.wait:
                return EXIT_OK
            seen: set[str] = set()
            for message in session.messages(time.monotonic() + args.timeout):
                try:
                    envelope = decode_envelope(message.payload)
                    reply = parse_body(OpReply, envelope.body)
                except (EnvelopeError, BodyError) as exc:
                    print(f"ignored an unreadable reply: {exc}", file=sys.stderr)
                    continue
                if envelope.id in seen:
                    continue  # at least once: a reply re-sent after a restart is the same id
                seen.add(envelope.id)
                print(json.dumps(reply.model_dump(mode="json"), ensure_ascii=False))
                if reply.state in FINAL_OP_STATES:
                    if reply.state is OpState.SUCCEEDED:
                        return EXIT_OK
                    return EXIT_TIMED_OUT if reply.state is OpState.TIMED_OUT else EXIT_FAILED
    except BrokerError as exc:
        return _fail(str(exc))
    return _fail(f"no final reply to {request_id} within {args.timeout:g} s", EXIT_NO_REPLY)


def _status(args: argparse.Namespace) -> int:
    from edged.fleetctl.broker import BrokerError, OperatorSession
    from edged.fleetctl.status import collect, render

    try:
        with OperatorSession(_options(args), f"edged-fleet-status-{time.time_ns()}") as session:
            rows = collect(session, args.site)
    except BrokerError as exc:
        return _fail(str(exc))
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "device": f"{row.site}/{row.device}",
                        "online": row.online,
                        "version": row.version,
                        "config": row.config.model_dump(mode="json") if row.config else None,
                        "last_seen": row.last_seen.isoformat() if row.last_seen else None,
                        "problems": row.problems,
                    }
                    for _key, row in sorted(rows.items())
                ],
                ensure_ascii=False,
                indent=2,
            )
        )
    else:
        print(render(rows))
    return EXIT_OK
