"""A three-node RabbitMQ cluster on this machine, for the cluster tests and benchmarks.

Each node has a name, AMQP, distribution and management ports, data, log and pid files of its own
(under one temporary directory, with its own HOME holding the Erlang cookie the nodes and
`rabbitmqctl` share), so it never touches a RabbitMQ already running here. Nodes 2 and 3 join
node 1 (`stop_app; join_cluster; start_app`). `stop`, `kill` and `start` act on one node; `close`
stops them all and SIGKILLs any beam process of these node names that is left.

    with Cluster.start() as cluster:
        cluster.amqp_url("guest", "guest", "/")   # amqp://guest:guest@127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from ehis.testing import free_port

SBIN = Path("/usr/lib/rabbitmq/bin")  # Debian's; the /usr/sbin wrappers switch to the rabbitmq user


class ClusterError(RuntimeError):
    """The cluster could not be started or changed; the message says which node and why."""


def available() -> str | None:
    """None when this machine can run the cluster, else why not."""
    for tool in ("rabbitmq-server", "rabbitmqctl"):
        if not (SBIN / tool).exists() and shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


def _tool(name: str) -> str:
    return str(SBIN / name) if (SBIN / name).exists() else (shutil.which(name) or name)


@dataclass
class Node:
    name: str  # ehis-c1-<tag>@localhost
    amqp_port: int
    dist_port: int
    management_port: int
    base: Path
    proc: subprocess.Popen | None = None

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"


class Cluster:
    """Three RabbitMQ nodes clustered on 127.0.0.1 (module doc)."""

    def __init__(self, size: int = 3, root: Path | None = None) -> None:
        self.tag = uuid.uuid4().hex[:6]
        self.root = root or Path(tempfile.mkdtemp(prefix=f"ehis-cluster-{self.tag}-"))
        self.home = self.root / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16))
        cookie.chmod(0o400)
        self.nodes = [Node(f"ehis-c{i}-{self.tag}@localhost", free_port(), free_port(), free_port(),
                           self.root / f"n{i}") for i in range(1, size + 1)]

    @classmethod
    def start(cls, size: int = 3, timeout: float = 120) -> Cluster:
        """Start `size` nodes, join them to the first, and wait until every one runs the broker."""
        cluster = cls(size)
        try:
            for node in cluster.nodes:
                cluster.start_node(node, wait=False)
            for node in cluster.nodes:
                cluster.await_node(node, timeout)
            first = cluster.nodes[0]
            for node in cluster.nodes[1:]:
                cluster.ctl(node, "stop_app")
                cluster.ctl(node, "join_cluster", first.name)
                cluster.ctl(node, "start_app", timeout=timeout)
            running = cluster.ctl(first, "eval", "length(rabbit_nodes:all_running()).")
            if running.strip() != str(size):
                raise ClusterError(f"{running.strip()} of {size} nodes running after the joins")
        except BaseException:
            cluster.close()
            raise
        return cluster

    def env(self, node: Node) -> dict[str, str]:
        node.base.mkdir(parents=True, exist_ok=True)
        config = node.base / "rabbitmq.conf"
        config.write_text(f"listeners.tcp.default = 127.0.0.1:{node.amqp_port}\n"
                          f"management.tcp.port = {node.management_port}\n"
                          "management.tcp.ip = 127.0.0.1\n"
                          "loopback_users = none\n"
                          "collect_statistics_interval = 1000\n")
        plugins = node.base / "enabled_plugins"
        plugins.write_text("[rabbitmq_management].\n")
        return dict(os.environ) | {
            "HOME": str(self.home), "RABBITMQ_NODENAME": node.name, "RABBITMQ_NODE_PORT": str(node.amqp_port),
            "RABBITMQ_DIST_PORT": str(node.dist_port), "RABBITMQ_MNESIA_BASE": str(node.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(node.base / "log"), "RABBITMQ_PID_FILE": str(node.base / "pid"),
            "RABBITMQ_CONFIG_FILE": str(config), "RABBITMQ_ENABLED_PLUGINS_FILE": str(plugins),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(node.base / "plugins-expand"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(node.base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(node.base / "rabbitmq-env.conf"),
        }

    def start_node(self, node: Node, *, wait: bool = True, timeout: float = 120, tries: int = 3) -> None:
        """Start (or restart) `node`; it rejoins the cluster from its own data.

        Like a supervisor, it starts the node again (up to `tries` times) when the process exits
        during start-up: a node restarted right after a SIGKILL can find its old name still held.
        """
        deadline = time.monotonic() + timeout
        for attempt in range(1, tries + 1):
            self._wait_name_released(node)
            log = open(self._log(node), "ab")  # noqa: SIM115 - the node's lifetime
            node.base.mkdir(parents=True, exist_ok=True)
            node.proc = subprocess.Popen([_tool("rabbitmq-server")], env=self.env(node), stdout=log,
                                         stderr=subprocess.STDOUT, cwd=node.base, start_new_session=True)
            if not wait:
                return
            try:
                self.await_node(node, max(10.0, deadline - time.monotonic()))
                return
            except ClusterError:
                if attempt == tries or node.proc.poll() is None or time.monotonic() > deadline:
                    raise
                time.sleep(1.0)

    def await_node(self, node: Node, timeout: float = 120) -> None:
        """Until `node` runs the broker (it registers with epmd a moment after its process starts)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl(node, "await_startup", timeout=max(5.0, deadline - time.monotonic()))
                return
            except ClusterError as error:
                if node.proc is not None and node.proc.poll() is not None:
                    raise ClusterError(f"{node.name} exited with {node.proc.returncode} while starting;"
                                       f" its output ends:\n{self._tail(node)}") from error
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _log(self, node: Node) -> Path:
        return node.base.parent / f"{node.base.name}.out"

    def _tail(self, node: Node, size: int = 1500) -> str:
        try:
            return self._log(node).read_bytes()[-size:].decode(errors="replace")
        except OSError:
            return "(no output)"

    def _wait_name_released(self, node: Node, timeout: float = 15) -> None:
        """Until epmd no longer lists `node` (a SIGKILLed beam's name is freed a moment later)."""
        short = node.name.split("@")[0]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                listed = subprocess.run(["epmd", "-names"], capture_output=True, text=True, check=False, timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                return  # no epmd tool: start and let await_node report
            if f"name {short} " not in listed.stdout:
                return
            time.sleep(0.2)

    def ctl(self, node: Node, *args: str, timeout: float = 60) -> str:
        """`rabbitmqctl -n <node> args`; its output, or a ClusterError naming the node."""
        try:
            done = subprocess.run([_tool("rabbitmqctl"), "-n", node.name, *args,
                                   *(("--timeout", str(int(timeout))) if args[0] == "await_startup" else ())],
                                  env=self.env(node), capture_output=True, text=True, timeout=timeout + 10,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"rabbitmqctl {args[0]} on {node.name}: no answer in {timeout} s") from None
        if done.returncode != 0:
            raise ClusterError(f"rabbitmqctl {args[0]} on {node.name}: {(done.stderr or done.stdout).strip()[-800:]}")
        return done.stdout

    def stop(self, node: Node) -> None:
        """A clean stop of `node` (its connections are closed, the others take over)."""
        self.ctl(node, "stop")
        if node.proc is not None:
            node.proc.wait(30)

    def kill(self, node: Node) -> None:
        """SIGKILL every OS process of `node` (beam, epmd is shared and left alone)."""
        for pid in self._pids(node):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if node.proc is not None:
            try:
                os.killpg(node.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            node.proc.wait(30)

    def _pids(self, node: Node) -> list[int]:
        """beam processes started with this node's name (never another RabbitMQ's)."""
        found = subprocess.run(["pgrep", "-f", f"-sname {node.name}|-name {node.name}|{node.name.split('@')[0]}@"],
                               capture_output=True, text=True, check=False)
        return [int(p) for p in found.stdout.split() if p.strip().isdigit() and int(p) != os.getpid()]

    def amqp_url(self, user: str, password: str, vhost: str = "/", nodes: list[Node] | None = None) -> str:
        """One URL naming every node (`ehis.bus.connection.addresses` splits it)."""
        hosts = ",".join(f"127.0.0.1:{n.amqp_port}" for n in (nodes or self.nodes))
        return f"amqp://{quote(user, safe='')}:{quote(password, safe='')}@{hosts}/{quote(vhost, safe='')}"

    def wait_amqp(self, node: Node, timeout: float = 60) -> None:
        import socket

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", node.amqp_port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise ClusterError(f"{node.name} does not listen on {node.amqp_port}")

    def close(self) -> None:
        """Stop every node; SIGKILL what is left of them; remove the data."""
        for node in self.nodes:
            if node.proc is not None and node.proc.poll() is None:
                try:
                    self.ctl(node, "stop", timeout=20)
                except ClusterError:
                    pass
        for node in self.nodes:
            self.kill(node)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
