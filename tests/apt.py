"""Debian packages that tests need (SLURM, Chromium), installed with apt where the tests run as root."""

from __future__ import annotations

import os
import shutil
import subprocess


def install_with_apt(*packages: str) -> str | None:
    """Install Debian `packages`; returns why it could not, or None."""
    if os.geteuid() != 0:
        return f"not root: cannot install {' and '.join(packages)}"
    if not shutil.which("apt-get"):
        return f"no apt-get to install {' and '.join(packages)}"
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            return f"{' '.join(command)} failed: {done.stderr[-500:]}"
    return None
