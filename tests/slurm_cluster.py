"""A one-node SLURM cluster on localhost for tests: munged, slurmctld and slurmd started from a
temporary folder (accounting off, no cgroups), and stopped by their PIDs.

The config goes to SLURM's default path, /etc/slurm/slurm.conf, as well as SLURM_CONF: Snakemake's
SLURM job step drops SLURM_* variables before its nested srun, which then reads the default path. A
machine that already has a slurm.conf there is left alone (the cluster refuses to start), unless it is
one this module wrote whose slurmctld is gone: a test run that was killed leaves that behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
DEFAULT_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER_NAME = "ClusterName=hybridwing"


class ClusterRefused(RuntimeError):
    """Starting here would disturb a configured SLURM installation."""


def missing_tools() -> list[str]:
    return [
        tool
        for tool in (*DAEMONS, "mungekey", "sbatch", "squeue", "srun")
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists()
    ]


def _pid_alive(pid_file: Path) -> bool:
    try:
        os.kill(int(pid_file.read_text().split()[0]), 0)
    except (OSError, ValueError, IndexError):
        return False
    return True


def left_by_a_killed_run(conf: Path) -> bool:
    """True for a config this module wrote whose slurmctld no longer runs."""
    lines = conf.read_text(errors="replace").splitlines()
    if CLUSTER_NAME not in lines:
        return False
    pid_files = [Path(line.split("=", 1)[1]) for line in lines if line.startswith("SlurmctldPidFile=")]
    return not any(_pid_alive(pid_file) for pid_file in pid_files)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sbin(tool: str) -> str:
    return shutil.which(tool) or f"/usr/sbin/{tool}"


class LocalCluster:
    """Start with `start()`, stop with `stop()`; `env` is what clients (sbatch, squeue, snakemake) need."""

    def __init__(self, folder: Path, cpus: int = 2, memory_mb: int = 8000):
        self.folder = Path(folder)
        self.cpus = cpus
        self.memory_mb = memory_mb
        self.processes: list[subprocess.Popen] = []
        self.conf = DEFAULT_CONF
        self.wrote_conf = False
        self.socket = self.folder / "munge.socket"
        self.env = os.environ | {"SLURM_CONF": str(self.conf)}

    def _write_config(self) -> None:
        if self.conf.exists() and not left_by_a_killed_run(self.conf):
            raise ClusterRefused(f"{self.conf} exists: this machine has a SLURM configuration of its own")
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        for sub in ("state", "spool", "log", "munge"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            "\n".join(
                [
                    CLUSTER_NAME,
                    "SlurmctldHost=localhost",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.socket}",
                    "CredType=cred/munge",
                    f"StateSaveLocation={self.folder / 'state'}",
                    f"SlurmdSpoolDir={self.folder / 'spool'}",
                    f"SlurmctldPidFile={self.folder / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.folder / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.folder / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.folder / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "MpiDefault=none",
                    "SlurmdParameters=config_overrides",  # the node may declare more CPUs than the machine has
                    "ReturnToService=2",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=30",
                    "InactiveLimit=0",
                    "MinJobAge=300",
                    "KillWait=5",
                    f"NodeName=localhost NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.memory_mb} State=UNKNOWN",
                    "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        self.wrote_conf = True

    def start(self, timeout_s: float = 60) -> None:
        self._write_config()
        key = self.folder / "munge" / "munge.key"
        subprocess.run([_sbin("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        key.chmod(0o400)
        self._spawn(
            [
                _sbin("munged"),
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={self.socket}",
                f"--pid-file={self.folder / 'munge' / 'munged.pid'}",
                f"--log-file={self.folder / 'log' / 'munged.log'}",
                f"--seed-file={self.folder / 'munge' / 'seed'}",
            ]
        )
        self._wait(lambda: self.socket.exists(), timeout_s, "munged")
        self._spawn([_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._spawn([_sbin("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait(self._node_idle, timeout_s, "the node to come up idle")

    def _spawn(self, command: list[str]) -> None:
        log = open(self.folder / "log" / f"{Path(command[0]).name}.out", "w")  # noqa: SIM115 - closed with the process
        self.processes.append(
            subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        )

    def _node_idle(self) -> bool:
        state = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
        return state.returncode == 0 and state.stdout.strip().startswith("idle")

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            dead = [p.args[0] for p in self.processes if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{', '.join(dead)} exited while waiting for {what}: see {self.folder / 'log'}")
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout_s:.0f} s for {what}: see {self.folder / 'log'}")

    def stop(self) -> None:
        """Stop the daemons this cluster started, newest first, by PID, and remove its config."""
        for process in reversed(self.processes):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait()
        if self.wrote_conf:
            self.conf.unlink(missing_ok=True)
            self.wrote_conf = False
