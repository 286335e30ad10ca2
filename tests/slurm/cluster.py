"""A throw-away single-node Slurm cluster for tests: munged on a private socket, slurmctld and
slurmd in the foreground, all state under one temporary folder. Needs root (slurmd starts jobs
as their users) and Debian's slurmctld, slurmd, slurm-client and munge (scripts/test installs
them). Every daemon it starts is stopped by PID, and the folder is removed, on exit.

    with SingleNodeCluster() as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env)
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

TOOLS = ["munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "srun", "scancel"]


def why_not_available():
    """None when a cluster can be started here, else the reason."""
    if os.geteuid() != 0:
        return "the single-node Slurm cluster needs root (slurmd runs jobs as their users); CI runs this test as root"
    missing = [t for t in TOOLS if not shutil.which(t) and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        return "Slurm/munge tools missing: " + ", ".join(missing) + " (scripts/test installs slurmctld slurmd slurm-client munge)"
    if not os.path.exists("/etc/munge/munge.key"):
        return "/etc/munge/munge.key is missing (the munge package creates it)"
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name):
    return shutil.which(name) or "/usr/sbin/" + name


class SingleNodeCluster:
    def __init__(self, start_timeout=90):
        self.start_timeout = start_timeout
        self.dir = None
        self.procs = []
        self.env = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="prunegym-slurm-")
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self):
        d = self.dir
        for sub in ("state", "spool", "munge"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(d, 0o755)
        munge = os.path.join(d, "munge")
        # munged checks that its folders belong to the user it runs as and are not world-writable.
        self._spawn([tool("munged"), "--foreground", "--force", f"--socket={munge}/munge.sock",
                     f"--pid-file={munge}/munged.pid", f"--log-file={munge}/munged.log",
                     f"--seed-file={munge}/munged.seed"], "munged")
        self._wait(lambda: os.path.exists(f"{munge}/munge.sock"), "munged to open its socket")
        host = socket.gethostname().split(".")[0]
        pages = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        memory_mb = max(512, int(pages / 2**20 * 0.8))
        conf = os.path.join(d, "slurm.conf")
        with open(conf, "w") as f:
            f.write(f"""# written by tests/slurm/cluster.py
ClusterName=prunegymtest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge}/munge.sock
ProctrackType=proctrack/pgid
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
NodeName={host} CPUs={os.cpu_count()} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
""")
        self.env = dict(os.environ, SLURM_CONF=conf)
        self._spawn([tool("slurmctld"), "-D", "-c", "-i"], "slurmctld")
        self._spawn([tool("slurmd"), "-D"], "slurmd")

        def idle():
            out = subprocess.run([tool("sinfo"), "--noheader", "--format=%t"], env=self.env, capture_output=True,
                                 text=True).stdout.split()
            return out and out[0] == "idle"

        self._wait(idle, "the node to be idle in sinfo")

    def _spawn(self, argv, name):
        log = open(os.path.join(self.dir, name + ".out"), "w")
        self.procs.append((name, subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env)))

    def _wait(self, ready, what):
        deadline = time.time() + self.start_timeout
        while time.time() < deadline:
            if ready():
                return
            for name, p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}:\n" + self.logs())
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}:\n" + self.logs())

    def logs(self):
        text = []
        for name in ("munged.out", "slurmctld.log", "slurmd.log", "slurmctld.out", "slurmd.out"):
            path = os.path.join(self.dir, name)
            if os.path.exists(path):
                with open(path, errors="replace") as f:
                    text.append(f"--- {name}\n" + "".join(f.readlines()[-15:]))
        return "\n".join(text)

    def cancel_all(self, timeout=30):
        """Cancels every job and waits until squeue lists none (their slurmstepd processes end)."""
        if not self.env:
            return
        subprocess.run([tool("scancel"), "--user", "root"], env=self.env, capture_output=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            out = subprocess.run([tool("squeue"), "--noheader"], env=self.env, capture_output=True, text=True)
            if out.returncode != 0 or not out.stdout.strip():
                return
            time.sleep(0.5)

    def __exit__(self, *exc):
        if any(name == "slurmd" and p.poll() is None for name, p in self.procs):
            self.cancel_all()
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return False
