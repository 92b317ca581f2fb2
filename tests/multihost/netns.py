"""Several "machines" on one: Linux network namespaces, each with its own host name, on a bridge.

Each host is a network namespace (``jqmh-<tag>-<name>``) whose veth pair joins a bridge in the root
namespace; the bridge has the subnet's first address (10.231.N.1), where the test's own Redis and
PostgreSQL listen, and host i has 10.231.N.(10+i). Commands run in a host with ``ip netns exec`` inside a
UTS namespace of their own, so Celery's ``%h`` is the host's name. Cutting a host's link (``ip link set
… down`` on its veth in the root namespace) makes the broker and the database unreachable for it, the
way a switch port or a cable would.

Everything made here is removed in ``close()`` (a context manager), also when a test fails: the
processes left in the namespaces are killed, then the namespaces and the bridge are deleted.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from tests.processes import Process

PREFIX = "jqmh"


class NamespacesUnavailable(RuntimeError):
    """Raised when this machine does not let the tests create network namespaces (why is the message)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def check_available() -> None:
    """Raise NamespacesUnavailable with the reason unless ``ip netns`` and ``unshare`` work here."""
    for tool in ("ip", "unshare", "hostname"):
        if shutil.which(tool) is None:
            raise NamespacesUnavailable(f"'{tool}' is not installed")
    if os.geteuid() != 0:
        raise NamespacesUnavailable(
            "creating network namespaces needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN)"
        )
    probe = f"{PREFIX}-probe-{os.getpid()}"
    added = _ip("netns", "add", probe, check=False)
    if added.returncode != 0:
        raise NamespacesUnavailable(f"'ip netns add' is not permitted here: {added.stderr.strip()}")
    try:
        uts = subprocess.run(
            ["ip", "netns", "exec", probe, "unshare", "--uts", "hostname", "probe"],
            capture_output=True,
            text=True,
            check=False,
        )
        if uts.returncode != 0:
            raise NamespacesUnavailable(f"'unshare --uts' is not permitted here: {uts.stderr.strip()}")
    finally:
        _ip("netns", "del", probe, check=False)


@dataclass
class Host:
    """One machine: a network namespace with one address, reached over its veth link."""

    name: str
    namespace: str
    address: str
    link: str  # the veth end in the root namespace: cut it to take the host off the network

    def command(self, argv: Sequence[str | Path]) -> list[str]:
        """``argv`` as run on this host: in its namespace, under its own host name."""
        set_name = f'hostname {self.name} && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", set_name, "sh"] + [
            str(part) for part in argv
        ]

    def start(self, argv: Sequence[str | Path], log_path: Path, *, cwd: Path, env: dict[str, str]) -> Process:
        """A long-running command on this host (stopped by the test, or by ``Network.close``)."""
        return Process(self.command(argv), log_path, cwd=cwd, env=env)

    def run(self, argv: Sequence[str | Path], *, cwd: Path, env: dict[str, str]) -> str:
        """A short command on this host; its output, or an error with it when it fails."""
        done = subprocess.run(
            self.command(argv), cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(map(str, argv))} on {self.name}: {done.stdout}{done.stderr}")
        return done.stdout


class Network:
    """A bridge with the servers' address and the hosts added to it."""

    def __init__(self) -> None:
        check_available()
        self.tag = f"{random.randrange(16**4):04x}"
        self.subnet = self._free_subnet()
        self.bridge = f"{PREFIX}{self.tag}br"
        self.server_address = f"10.231.{self.subnet}.1"
        self.hosts: dict[str, Host] = {}
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
            _ip("addr", "add", f"{self.server_address}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _free_subnet() -> int:
        used = _ip("-o", "addr", "show").stdout
        free = [n for n in range(1, 255) if f"10.231.{n}." not in used]
        if not free:
            raise NamespacesUnavailable("no free 10.231.N.0/24 subnet")
        return random.choice(free)

    def add_host(self, name: str) -> Host:
        index = len(self.hosts) + 1
        namespace = f"{PREFIX}-{self.tag}-{name}"
        root_end, host_end = f"{PREFIX}{self.tag}{index}r", f"{PREFIX}{self.tag}{index}h"
        address = f"10.231.{self.subnet}.{10 + index}"
        host = Host(f"{PREFIX}-{name}", namespace, address, root_end)
        self.hosts[name] = host
        _ip("netns", "add", namespace)
        _ip("link", "add", root_end, "type", "veth", "peer", "name", host_end)
        _ip("link", "set", host_end, "netns", namespace)
        _ip("link", "set", root_end, "master", self.bridge)
        _ip("link", "set", root_end, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", host_end)
        _ip("-n", namespace, "link", "set", host_end, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        return host

    def cut(self, host: Host) -> None:
        """Take the host off the network: nothing it sends arrives, nothing reaches it."""
        _ip("link", "set", host.link, "down")

    def mend(self, host: Host) -> None:
        _ip("link", "set", host.link, "up")

    def kill_processes(self, host: Host) -> None:
        """SIGKILL every process still running in the host's namespace (all of them the test's own)."""
        pids = _ip("netns", "pids", host.namespace, check=False).stdout.split()
        for pid in pids:
            with suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)

    def close(self) -> None:
        for host in self.hosts.values():
            self.kill_processes(host)
            _ip("link", "del", host.link, check=False)  # and its peer in the namespace
            _ip("netns", "del", host.namespace, check=False)
        _ip("link", "del", self.bridge, check=False)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
