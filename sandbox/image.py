"""Build the docker backend's base image without a registry: debootstrap + import."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from agentgym.errors import SandboxUnavailable
from agentgym.sandbox.docker import DEFAULT_IMAGE, IMAGE_LABEL, docker_client

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"


def image_exists(tag: str = DEFAULT_IMAGE) -> bool:
    """Whether the image is already in the local Docker engine."""
    try:
        docker_client().images.get(tag)
    except SandboxUnavailable:
        raise
    except Exception:
        return False
    return True


def build_image(
    tag: str = DEFAULT_IMAGE,
    *,
    suite: str = DEFAULT_SUITE,
    mirror: str = DEFAULT_MIRROR,
    force: bool = False,
    say: Callable[[str], None] = lambda s: None,
) -> str:
    """Build a minimal Debian + python3 image with debootstrap and ``docker import``.

    Needs root, debootstrap and a reachable Debian mirror; no registry is used.
    Skipped when ``tag`` exists already (unless ``force``).

    Args:
        tag: Image name to create.
        suite: Debian suite for debootstrap.
        mirror: Debian mirror URL.
        force: Rebuild even if the image exists.
        say: Progress callback (the CLI prints it).

    Returns:
        ``"exists"`` or ``"built"``.

    Raises:
        SandboxUnavailable: Docker, root or debootstrap is missing, or the build failed.
    """
    client = docker_client()
    if not force and image_exists(tag):
        say(f"image {tag} already present; nothing to do")
        return "exists"
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "building the sandbox image needs root (debootstrap); rerun as root"
        )
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None:
        raise SandboxUnavailable("debootstrap is missing: apt-get install debootstrap")
    with tempfile.TemporaryDirectory(prefix="agentgym-image-", dir="/var/tmp") as d:
        rootfs = Path(d) / "rootfs"
        say(f"debootstrap {suite} (minbase + python3) from {mirror} ... (a few minutes)")
        cmd = [debootstrap, "--variant=minbase", "--include=python3", suite, str(rootfs), mirror]
        p = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if p.returncode != 0:
            raise SandboxUnavailable(f"debootstrap failed:\n{(p.stdout + p.stderr)[-3000:]}")
        for junk in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
        ):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        tarball = Path(d) / "rootfs.tar"
        say("packing the root file system")
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tarball), "."], check=True)
        repo, _, version = tag.partition(":")
        say(f"docker import -> {tag}")
        client.api.import_image_from_file(
            str(tarball),
            repository=repo,
            tag=version or "latest",
            changes=[f"LABEL {IMAGE_LABEL}=1", 'CMD ["/usr/bin/python3"]'],
        )
    if not image_exists(tag):
        raise SandboxUnavailable(f"docker import finished but {tag} is not listed")
    say(f"built {tag}")
    return "built"
