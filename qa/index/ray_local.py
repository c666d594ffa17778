"""A multi-node Ray cluster on this machine (a head and worker nodes on 127.0.0.1, each its own `ray start`),
for the Ray build's test and benchmark. Each node runs `ray start --block` in a session of its own, and
stopping kills those sessions only: never `ray stop`, which would end every Ray process on the machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

from qa.errors import QAError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalRayCluster:
    """``with LocalRayCluster(workers=1) as address:`` a head and ``workers`` worker nodes; ``address`` is
    the head's host:port for ``ray.init`` / ``qa index --ray``."""

    def __init__(
        self,
        workers: int = 1,
        *,
        cpus: int = 2,
        head_cpus: int | None = None,
        object_store_bytes: int = 200_000_000,
    ) -> None:
        self.workers = workers
        self.cpus = cpus
        self.head_cpus = cpus if head_cpus is None else head_cpus  # 0: the head schedules, runs no work
        self.object_store_bytes = object_store_bytes
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp_dir = tempfile.mkdtemp(prefix="qaray", dir="/tmp")  # short: Ray's socket paths
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.ray = str(Path(sys.executable).parent / "ray")
        token = Path(self.temp_dir) / "auth_token"  # `ray start` turns token auth on: a token of its own
        token.write_text(secrets.token_hex(32), encoding="utf-8")
        token.chmod(0o600)
        # what a client of this cluster needs in its environment (``ray.init``, `qa index --ray`)
        self.env = {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0",
        }

    def _node_flags(self, cpus: int) -> list[str]:
        return [
            f"--num-cpus={cpus}",
            f"--object-store-memory={self.object_store_bytes}",
            "--node-ip-address=127.0.0.1",
            "--disable-usage-stats",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}",
            f"--metrics-export-port={free_port()}",
            "--block",
        ]

    def _start(self, flags: list[str]) -> None:
        log = open(Path(self.temp_dir) / f"node{len(self.nodes)}.log", "wb")  # noqa: SIM115 (kept by the node)
        env = os.environ | self.env
        self.nodes.append(
            subprocess.Popen(
                [self.ray, "start", *flags],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
            )
        )

    def _wait_for_nodes(self, count: int, timeout: float = 120.0) -> None:
        script = (
            "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(n.poll() is not None for n in self.nodes):
                raise QAError(f"a Ray node exited; logs in {self.temp_dir}")
            out = subprocess.run(
                [sys.executable, "-c", script, self.address],
                capture_output=True,
                text=True,
                timeout=60,
                env=os.environ | self.env,
            )
            if out.returncode == 0 and out.stdout.strip().splitlines()[-1:] == [str(count)]:
                return
            time.sleep(1)
        raise QAError(f"the local Ray cluster did not come up with {count} nodes; logs in {self.temp_dir}")

    def start(self) -> str:
        self._start(
            [
                "--head",
                f"--port={self.port}",
                f"--temp-dir={self.temp_dir}",
                "--include-dashboard=false",
                *self._node_flags(self.head_cpus),
            ]
        )
        self._wait_for_nodes(1)
        for n in range(self.workers):  # one at a time: a raylet has 30 s (Ray's, fixed) to register, and two
            # starting together on two busy cores took longer
            self._start([f"--address={self.address}", *self._node_flags(self.cpus)])
            self._wait_for_nodes(2 + n)
        return self.address

    def stop(self) -> None:
        """End the worker nodes, then the head: each node's session, nothing else."""
        for node in reversed(self.nodes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGTERM)  # `ray start --block` stops its node's processes
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=20)
            time.sleep(0.5)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.pid, signal.SIGKILL)  # whatever of that session is left
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.wait(timeout=5)
        self.nodes.clear()

    def __enter__(self) -> str:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
