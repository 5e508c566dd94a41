"""A real single-node SLURM cluster for the tests: munged, slurmctld and slurmd from Debian's
``slurm-wlm`` and ``munge`` packages, run in the foreground as children of the test process.

Everything they read and write is in one folder: the munge key and socket, ``slurm.conf``,
the controller's state, the node's spool, pid files and logs. ``SLURM_CONF`` points the
client commands (``sbatch``, ``squeue``, ``scontrol``, ``scancel``) and the jobs at it; no
system file is read or written. The node is this machine (``slurmd -C``: its short host
name, CPUs and memory). There is no slurmdbd, so no ``sacct``: :meth:`SlurmCluster.jobs`
reads ``scontrol show job``, which keeps ended jobs for ``MinJobAge`` seconds.

Without the packages the tests skip with a message saying how to install them, unless
``MISCREEN_REQUIRE_SLURM=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REQUIRE = "MISCREEN_REQUIRE_SLURM"
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}

CONF = """\
ClusterName=miscreen-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
PlugStackConfig={root}/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
DependencyParameters=kill_invalid_depend
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=3600
InactiveLimit=0
KillWait=5
SlurmctldTimeout=30
SlurmdTimeout=30
{node} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def install_hint() -> str:
    """How to enable the real-SLURM tests."""
    return (
        "the real-SLURM tests need Debian's slurm-wlm and munge packages: "
        "`apt-get install slurm-wlm munge` (as root), then `make test`"
    )


def require_slurm() -> None:
    """Skip (or, with ``MISCREEN_REQUIRE_SLURM=1``, fail) when a SLURM or munge program is
    missing from PATH (daemons are looked up in the ``sbin`` folders too)."""
    missing = [name for name in DAEMONS + CLIENTS if find(name) is None]
    if not missing:
        return
    message = f"{', '.join(missing)} not found; {install_hint()}"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{REQUIRE}=1 but {message}", pytrace=False)
    pytest.skip(message)


def find(name: str) -> str | None:
    """A program on PATH, or in /usr/sbin and /sbin (not on a plain user's PATH)."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def node_line() -> str:
    """This machine as ``slurmd -C`` sees it: ``NodeName=<host -s> CPUs=... RealMemory=...``."""
    out = subprocess.run(
        [find("slurmd") or "slurmd", "-C"], capture_output=True, text=True, check=True
    ).stdout
    return next(line for line in out.splitlines() if line.startswith("NodeName="))


@dataclass
class SlurmCluster:
    """A running single-node cluster: its folder, ``slurm.conf`` and daemon processes."""

    root: Path
    conf: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *args: str) -> str:
        """A client command against this cluster -> its stdout (raises on failure)."""
        res = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=60)
        if res.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({res.returncode}): {res.stderr}")
        return res.stdout

    def jobs(self, job_id: str) -> list[dict[str, str]]:
        """Every record of a job (one per array task once they were split), as
        ``scontrol show job -o`` fields: JobState, Reason, ExitCode, ArrayTaskId, ..."""
        out = self.run("scontrol", "show", "job", "-o", job_id)
        return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line]

    def states(self, job_id: str) -> list[str]:
        return [job["JobState"] for job in self.jobs(job_id)]

    def wait(self, *job_ids: str, timeout: float = 120.0) -> dict[str, list[dict[str, str]]]:
        """Wait until every task of these jobs ended -> their records."""
        deadline = time.monotonic() + timeout
        while True:
            records = {j: self.jobs(j) for j in job_ids}
            if all(r["JobState"] in ENDED for recs in records.values() for r in recs):
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"jobs not ended after {timeout:.0f} s: {records}\n{self.logs()}"
                )
            time.sleep(0.5)

    def queue(self) -> list[str]:
        """Ids of the jobs not ended yet."""
        return self.run("squeue", "-h", "-o", "%i").split()

    def cancel_all(self, timeout: float = 60.0) -> None:
        """Cancel every job and wait until the queue is empty (their processes are gone)."""
        self.run("scancel", "--full", f"--user={os.getuid()}")
        deadline = time.monotonic() + timeout
        while self.queue() and time.monotonic() < deadline:
            time.sleep(0.5)

    def logs(self, lines: int = 30) -> str:
        """The last lines of every daemon log (for failure messages)."""
        out = []
        for path in sorted((self.root / "log").glob("*")):
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(out)

    def stop(self) -> None:
        """Stop the daemons by PID (slurmd, slurmctld, then munged)."""
        for name in reversed(list(self.procs)):
            proc = self.procs.pop(name)
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=15)


def start_daemon(cluster: SlurmCluster, name: str, *args: str) -> None:
    """Start one daemon in the foreground, its output going to ``log/<name>.out``."""
    with open(cluster.root / "log" / f"{name}.out", "wb") as out:  # the child keeps its copy
        cluster.procs[name] = subprocess.Popen(
            [find(name) or name, *args],
            env=cluster.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the tests, which stop the daemons
            preexec_fn=die_with_parent,
        )


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the test process dies, even by SIGKILL, so no
    daemon outlives a killed test run (Linux ``prctl(PR_SET_PDEATHSIG)``)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def wait_for(what: str, ready, cluster: SlurmCluster, timeout: float = 30.0) -> None:
    """Poll ``ready()`` until true; a daemon that exited or a timeout raises with the logs."""
    deadline = time.monotonic() + timeout
    while not ready():
        dead = {n: p.returncode for n, p in cluster.procs.items() if p.poll() is not None}
        if dead or time.monotonic() > deadline:
            why = f"exited {dead}" if dead else f"not ready after {timeout:.0f} s"
            raise RuntimeError(f"SLURM test cluster: {what} {why}\n{cluster.logs()}")
        time.sleep(0.2)


def write_munge_key(path: Path) -> None:
    path.write_bytes(os.urandom(1024))
    path.chmod(0o600)


def node_idle(cluster: SlurmCluster) -> bool:
    try:
        states = cluster.run("sinfo", "-h", "-o", "%T").split()
    except RuntimeError:
        return False
    return bool(states) and all(s == "idle" for s in states)


@contextmanager
def slurm_cluster(root: Path) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd in ``root``; cancel every job and stop them after."""
    require_slurm()
    for sub in ("munge", "state", "spool", "run", "log"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    munge = root / "munge"
    munge.chmod(0o755)  # slurmd and the jobs reach the socket through it
    write_munge_key(munge / "munge.key")
    (root / "plugstack.conf").write_text("")
    conf = root / "slurm.conf"
    node = node_line()
    conf.write_text(
        CONF.format(
            host=node.split()[0].removeprefix("NodeName="),
            ctld_port=free_port(),
            slurmd_port=free_port(),
            munge_socket=munge / "munge.socket",
            root=root,
            node=node,
        )
    )
    cluster = SlurmCluster(root, conf)
    try:
        start_daemon(
            cluster,
            "munged",
            "--foreground",
            "--force",  # the test's folder is private to root, not open to all
            f"--socket={munge / 'munge.socket'}",
            f"--key-file={munge / 'munge.key'}",
            f"--pid-file={root / 'run' / 'munged.pid'}",
            f"--log-file={root / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        wait_for("munged", (munge / "munge.socket").exists, cluster)
        start_daemon(cluster, "slurmctld", "-D", "-f", str(conf))
        start_daemon(cluster, "slurmd", "-D", "-f", str(conf))
        wait_for("the node", lambda: node_idle(cluster), cluster)
        yield cluster
    finally:
        try:
            if "slurmctld" in cluster.procs and cluster.procs["slurmctld"].poll() is None:
                cluster.cancel_all()
        finally:
            cluster.stop()
