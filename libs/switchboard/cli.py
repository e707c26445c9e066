"""The `switchboard` command: run the embedded stack, one service, the demo, topic and contract tools."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import time
from pathlib import Path

from switchboard.stack import DEFAULT_PORTS, SERVICES, EmbeddedStack, StackConfig


def serve(service: str) -> int:
    """Run one service in this process against the configured broker and Redis."""
    import uvicorn

    from switchboard.service import configure_logging, settle_heap

    module = importlib.import_module(f"{service}.app")
    settings = importlib.import_module(f"{service}.config").Settings()
    configure_logging(settings.log_level)
    app = module.create_app(settings)
    settle_heap()
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on")
    return 0


def up(args: argparse.Namespace) -> int:
    """Start the embedded stack in the foreground until Ctrl-C."""
    ports = dict(DEFAULT_PORTS)
    for service in SERVICES:
        env_port = os.environ.get(f"{service.upper()}_PORT")
        if env_port:
            ports[service] = int(env_port)
    bootstrap = os.environ.get("SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    host, _, port = bootstrap.partition(":")
    config = StackConfig(
        kafka_host=host,
        kafka_port=int(port or 9092),
        redis_url=os.environ.get("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:6379/0"),
        ports=ports,
        state_dir=Path(args.state_dir),
    )
    stack = EmbeddedStack(config)

    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell may start `up` with SIGINT ignored, and SIGTERM must stop it cleanly too.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    print("starting Switchboard (embedded stack)…", flush=True)
    try:
        stack.start()
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        return 1
    print()
    print(f"  broker       {config.bootstrap}   (Kafka protocol)")
    print(f"  redis        {config.redis_url}")
    for service in SERVICES:
        print(f"  {service:<12} {stack.url(service)}   /healthz /readyz /metrics")
    print(f"  API docs     {stack.url('ingest')}/docs")
    for what in stack.reused:
        print(f"  reusing      {what}")
    print(f"  logs         {config.state_dir / 'logs'}/")
    print(
        "\nall services ready. Try `switchboard demo` in another terminal. Ctrl-C stops everything.",
        flush=True,
    )
    try:
        while not (dead := [p for p in stack.processes if p.popen.poll() is not None]):
            time.sleep(1.0)
        for process in dead:
            print(f"{process.name} exited ({process.popen.returncode}); see {process.log}", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    print("\nstopping…", flush=True)
    stack.stop()
    print("stopped.")
    return 0


def topics() -> int:
    """Create the contract's topics on the configured broker."""
    from switchboard.config import KafkaSettings
    from switchboard.topics import ensure_topics

    created = asyncio.run(ensure_topics(KafkaSettings()))
    print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else " (all existed)"))
    return 0


def contract(args: argparse.Namespace) -> int:
    """Write the JSON Schema and AsyncAPI snapshots, or check that they are current."""
    from switchboard.asyncapi import check_snapshots, write_snapshots

    directory = Path(args.dir)
    if args.check:
        drift = check_snapshots(directory)
        for line in drift:
            print(line, file=sys.stderr)
        return 1 if drift else 0
    for path in write_snapshots(directory):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the `switchboard` command's parser, every subcommand on it."""
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the whole stack on this machine (no Docker)")
    p_up.add_argument("--state-dir", default=".switchboard", help="where logs and Redis data go")
    p_serve = sub.add_parser("serve", help="run one service against a given broker and Redis")
    p_serve.add_argument("service", choices=SERVICES)
    sub.add_parser("topics", help="create every topic of the contract (idempotent)")
    p_demo = sub.add_parser(
        "demo", help="post realistic French and English messages and show where each went"
    )
    p_demo.add_argument("--url", default=os.environ.get("SWITCHBOARD_INGEST_URL", "http://127.0.0.1:8080"))
    p_demo.add_argument("--limit", type=int, default=40, help="how many messages to post (0: all)")
    p_demo.add_argument("--interval", type=float, default=0.15, help="seconds between messages")
    p_demo.add_argument("--timeout", type=float, default=30.0, help="how long to wait for the last routing")
    # The classifier's own commands (classify, train, evaluate, the loop that fits it to your traffic).
    from classifier.commands import add_classifier_commands

    add_classifier_commands(sub)
    p_key = sub.add_parser(
        "api-key", help="make an ingest API key, print it once and its INGEST_API_KEYS entry"
    )
    p_key.add_argument("name", help="who holds the key (letters, digits, _ . -)")
    p_key.add_argument("--rate", type=int, default=None, help="requests per minute for this key")
    p_contract = sub.add_parser("contract", help="write or check the event schemas and AsyncAPI document")
    p_contract.add_argument("--dir", default="docs/contract")
    p_contract.add_argument("--check", action="store_true", help="fail if the snapshots are stale")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the command."""
    args = build_parser().parse_args(argv)
    if "run" in args:
        return args.run(args)
    if args.command == "up":
        return up(args)
    if args.command == "serve":
        return serve(args.service)
    if args.command == "topics":
        return topics()
    if args.command == "api-key":
        from ingest.keys import print_new_key

        return print_new_key(args.name, args.rate)
    if args.command == "demo":
        from switchboard.demo import run_demo

        return asyncio.run(run_demo(args.url, args.limit, args.interval, args.timeout))
    return contract(args)
