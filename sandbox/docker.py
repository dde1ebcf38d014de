"""The ``docker`` backend: warm containers, no network, read-only root, tmpfs workspace.

Each :class:`DockerSandbox` holds one long-lived container whose main process is
the agent; runs are forks inside it. Containers are labelled; a container's
stdin is attached by this process, so when this process dies (even by SIGKILL)
the agent reads EOF and the container exits and is removed. Closed sandboxes
return their container, wiped, to a small warm cache for the next sandbox.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import socket
import struct
import threading
import time
from typing import Any

from agentgym.errors import SandboxError, SandboxTimeout, SandboxUnavailable
from agentgym.sandbox._host import AGENT_PATH, alloc_uid, encode_frame, log
from agentgym.sandbox.base import AgentSandbox
from agentgym.sandbox.types import Limits

DEFAULT_IMAGE = "agentgym-sandbox:bookworm"
LABEL = "agentgym.sandbox"
OWNER_LABEL = "agentgym.sandbox.owner"
IMAGE_LABEL = "agentgym.sandbox.image"
AGENT_IN_CONTAINER = "/opt/agentgym/agent.py"
MAX_WARM = 4
START_HINT = (
    "Start the Docker daemon (systemctl start docker, or run `dockerd &` as root) and make "
    "sure this user may use /var/run/docker.sock, or pick another backend (bwrap, local)."
)
BUILD_HINT = "Build it with `agentgym sandbox build-image` (needs root and debootstrap)."


def docker_client() -> Any:
    """A connected docker SDK client, or SandboxUnavailable saying what to do."""
    try:
        import docker
    except ImportError as e:
        raise SandboxUnavailable(
            "The docker backend needs the docker SDK: pip install 'agentgym[docker]'."
        ) from e
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as e:
        raise SandboxUnavailable(f"The Docker daemon is not reachable ({e}). {START_HINT}") from e
    return client


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def remove_stale_containers(client: Any) -> int:
    """Remove agentgym containers whose owning process (on this host) is gone."""
    host = socket.gethostname()
    removed = 0
    for c in client.containers.list(all=True, filters={"label": LABEL}):
        owner = c.labels.get(OWNER_LABEL, "")
        h, _, pid = owner.rpartition(":")
        if h != host or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(Exception):
            c.remove(force=True)
            removed += 1
    return removed


class DockerChannel:
    """The attached stdin/stdout of a container whose main process is the agent."""

    def __init__(self, client: Any, container: Any, sock: Any) -> None:
        self.client = client
        self.container = container
        self.raw = getattr(sock, "_sock", sock)
        self._buf = b""
        self._stderr = b""
        self._dead = False

    def alive(self) -> bool:
        """False once the agent's stream has ended."""
        if self._dead:
            return False
        try:
            if select.select([self.raw], [], [], 0)[0] and not self.raw.recv(1, socket.MSG_PEEK):
                self._dead = True
        except OSError:
            self._dead = True
        return not self._dead

    def request(self, req: dict[str, Any], timeout: float, tail: bytes = b"") -> dict[str, Any]:
        """Send one request frame (then ``tail``) and read the response frame."""
        try:
            self.raw.sendall(encode_frame(req) + tail)
        except OSError as e:
            raise self._died("while sending a request") from e
        deadline = time.monotonic() + timeout
        head = self._read(4, deadline)
        (n,) = struct.unpack(">I", head)
        return json.loads(self._read(n, deadline).decode("utf-8"))

    def _read(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._pull(deadline)
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _pull(self, deadline: float) -> None:
        """Read one multiplexed docker frame (8-byte header) into the buffers."""
        header = self._recv_exact(8, deadline)
        kind, size = header[0], struct.unpack(">I", header[4:])[0]
        data = self._recv_exact(size, deadline)
        if kind == 1:
            self._buf += data
        else:
            self._stderr = (self._stderr + data)[-4000:]

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.raw], [], [], left)[0]:
                self.close()
                raise SandboxTimeout(
                    "the docker sandbox agent did not answer in time; its container was removed. "
                    "This is an infrastructure failure, not the code's."
                )
            try:
                chunk = self.raw.recv(n - len(buf))
            except OSError as e:
                raise self._died(f"while reading ({e})") from e
            if not chunk:
                raise self._died("while waiting for a response")
            buf += chunk
        return buf

    def _died(self, when: str) -> SandboxError:
        self._dead = True
        err = self._stderr.decode("utf-8", "replace").strip()
        self.close()
        return SandboxError(
            f"the docker sandbox container stopped {when}; agent stderr: {err or '(empty)'}. "
            "Is the Docker daemon still running?"
        )

    def close(self) -> None:
        """Remove the container (it is killed) and close the stream."""
        self._dead = True
        with contextlib.suppress(Exception):
            self.client.api.remove_container(self.container, force=True)
        with contextlib.suppress(OSError):
            self.raw.close()


# Warm containers, keyed by their container-level configuration.
_warm: dict[tuple[Any, ...], list[tuple[DockerChannel, int]]] = {}
_warm_lock = threading.Lock()


@atexit.register
def _drain_warm() -> None:
    with _warm_lock:
        for entries in _warm.values():
            for ch, _ in entries:
                ch.close()
        _warm.clear()


class DockerSandbox(AgentSandbox):
    """Runs code in a warm Docker container.

    ``--network none``, memory, pids and CPU limits, read-only root, tmpfs
    workspace and ``/tmp``, all capabilities dropped but those the agent needs to
    switch to the task's uid.
    """

    backend = "docker"

    def __init__(
        self, limits: Limits, *, image: str = DEFAULT_IMAGE, persistent: bool = True
    ) -> None:
        super().__init__(limits, persistent=True)
        self.client = docker_client()
        self.image = image
        try:
            self.client.images.get(image)
        except Exception as e:
            raise SandboxUnavailable(f"Docker image {image!r} is missing. {BUILD_HINT}") from e
        remove_stale_containers(self.client)
        self._key = (image, limits.memory_mb, limits.max_processes, limits.disk_mb, limits.network)
        channel, self.uid = self._take_warm() or self._create()
        self._channel = channel

    def _take_warm(self) -> tuple[DockerChannel, int] | None:
        with _warm_lock:
            entries = _warm.get(self._key, [])
            while entries:
                ch, uid = entries.pop()
                if ch.alive():
                    return ch, uid
                ch.close()
        return None

    def _create(self) -> tuple[DockerChannel, int]:
        lim = self.limits
        uid = alloc_uid()
        if uid < 0:
            uid = 65534
        cmd = ["/usr/bin/python3", "-I", AGENT_IN_CONTAINER, "--workspace", "/workspace"]
        cmd += ["--scratch", "/tmp", "--uid", str(uid), "--chown", "--serve"]
        mem = (lim.memory_mb + lim.disk_mb + 256) << 20
        tmpfs_opts = f"size={lim.disk_mb}m,mode=0700"
        api = self.client.api
        try:
            host_config = api.create_host_config(
                network_mode="bridge" if lim.network else "none",
                mem_limit=mem,
                memswap_limit=mem,
                pids_limit=lim.max_processes + 32,
                nano_cpus=1_000_000_000,
                read_only=True,
                tmpfs={"/workspace": tmpfs_opts, "/tmp": tmpfs_opts},
                binds={str(AGENT_PATH): {"bind": AGENT_IN_CONTAINER, "mode": "ro"}},
                cap_drop=["ALL"],
                cap_add=["SETUID", "SETGID", "KILL", "CHOWN", "DAC_OVERRIDE", "FOWNER"],
                security_opt=["no-new-privileges"],
                init=True,
                auto_remove=True,
            )
            container = api.create_container(
                self.image,
                cmd,
                stdin_open=True,  # with detach=False this sets StdinOnce: EOF when we go
                labels={LABEL: "1", OWNER_LABEL: _owner()},
                environment={"LANG": "C.UTF-8"},
                host_config=host_config,
            )["Id"]
            sock = api.attach_socket(
                container, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
            )
            api.start(container)
        except Exception as e:
            raise SandboxUnavailable(
                f"could not start a sandbox container: {e}. {START_HINT}"
            ) from e
        return DockerChannel(self.client, container, sock), uid

    def _start_agent(self, serve: bool) -> DockerChannel:
        raise SandboxError(
            "the docker sandbox's container is gone (killed, or the daemon restarted); "
            "its workspace is lost. Create a new sandbox."
        )

    def close(self) -> None:
        """Wipe the container and keep it warm for the next sandbox (or remove it)."""
        ch = self._detach()
        if not isinstance(ch, DockerChannel) or not ch.alive():
            return
        try:
            resp = ch.request({"op": "reset"}, 30)
        except SandboxError:
            return
        with _warm_lock:
            entries = _warm.setdefault(self._key, [])
            if resp.get("ok") and len(entries) < MAX_WARM:
                entries.append((ch, self.uid))
                return
        ch.close()


def docker_unavailable_reason(image: str = DEFAULT_IMAGE) -> str | None:
    """Why the docker backend cannot run here, or None when it can."""
    try:
        client = docker_client()
    except SandboxUnavailable as e:
        return str(e)
    try:
        client.images.get(image)
    except Exception:
        return f"Docker works but the image {image!r} is missing. {BUILD_HINT}"
    log.debug("docker backend available")
    return None
