"""How the operations CLI reaches the servers: OpenSSH, as the deploy's image shipping does
(components/ship_image.py: its `ssh` command line and private agent).

One `Session` per CLI run: a 0700 temporary directory holding a known_hosts file with the
stack's pinned host keys (and the bastion's) and the socket of a private `ssh-agent` that
holds the stack's key, stopped at the end; the key never touches the disk. `~/.ssh/config`
is not read. Every connection is bounded: `ConnectTimeout`, keepalives (a dead connection
is given up after 45 s) and, for commands that are not interactive or following, an
overall timeout. A host that cannot be reached is a `Result` naming it, never an exception.
"""
from __future__ import annotations

import concurrent.futures
import os
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from components.ship_image import Agent, known_host, ssh_command

from .stack import OpsHost

SSH_FAILED = 255  # what ssh exits with when it, not the remote command, failed


@dataclass(frozen=True)
class Result:
    host: OpsHost
    returncode: Optional[int]  # None: no answer within the timeout
    stdout: str = ""
    stderr: str = ""
    timeout: Optional[float] = None

    @property
    def reached(self) -> bool:
        return self.returncode is not None and self.returncode != SSH_FAILED

    def problem(self) -> str:
        """Why the host could not be asked (empty when it answered)."""
        if self.returncode is None:
            return f"no answer within {self.timeout:g}s"
        if self.returncode == SSH_FAILED:
            said = [line for line in self.stderr.splitlines() if line.strip()]
            return "unreachable: " + (said[-1].strip() if said else "ssh failed")
        return ""


class Session:
    """SSH to the stack's hosts (a context manager: the agent and files go at the end)."""

    def __init__(self, hosts: Sequence[OpsHost], key: str, *, connect_timeout: int = 10):
        self.hosts = list(hosts)
        self.key = key
        self.connect_timeout = connect_timeout
        self._dir: Optional[tempfile.TemporaryDirectory] = None
        self._agent: Optional[Agent] = None

    def __enter__(self) -> "Session":
        self._dir = tempfile.TemporaryDirectory(prefix="djscale-ops-")
        directory = Path(self._dir.name)
        os.chmod(directory, 0o700)
        self.known_hosts = directory / "known_hosts"
        lines = []
        for host in self.hosts:
            for connection in (host.connection, host.connection.get("proxy")):
                if connection and known_host(connection) not in lines:
                    lines.append(known_host(connection))
        self.known_hosts.write_text("".join(lines))
        self._agent = Agent(directory, self.key)
        return self

    def __exit__(self, *exc) -> None:
        if self._agent is not None:
            self._agent.stop()
        if self._dir is not None:
            self._dir.cleanup()

    @property
    def env(self) -> dict[str, str]:
        return self._agent.env

    def argv(self, host: OpsHost, remote: str, *, tty: bool = False) -> list[str]:
        return ssh_command(host.connection, self.known_hosts, remote,
                           connect_timeout=self.connect_timeout, tty=tty)

    # -- the ways a command runs --------------------------------------------------------
    def run(self, host: OpsHost, remote: str, timeout: float) -> Result:
        """`remote` on `host`, output captured, within `timeout` seconds."""
        try:
            done = subprocess.run(self.argv(host, remote), env=self.env, capture_output=True,
                                  text=True, errors="replace", timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return Result(host, None, timeout=timeout)
        return Result(host, done.returncode, done.stdout, done.stderr)

    def run_all(self, jobs: Sequence[tuple[OpsHost, str]], timeout: float) -> list[Result]:
        """Each (host, remote) at once; results in the order of `jobs`."""
        if not jobs:
            return []
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(16, len(jobs))) as pool:
            futures = [pool.submit(self.run, host, remote, timeout) for host, remote in jobs]
            return [future.result() for future in futures]

    def stream(self, jobs: Sequence[tuple[OpsHost, str]],
               on_line: Callable[[OpsHost, str], None],
               on_end: Optional[Callable[[Result], None]] = None) -> list[Result]:
        """Each (host, remote) at once, every stdout line handed to `on_line` as it comes
        and each host's end to `on_end` when it comes (a host that cannot be reached is
        known at once, not when the others end), until all end (or the operator
        interrupts: then every ssh is stopped)."""
        # their own sessions: the operator's Ctrl-C stops them through `finally`, after
        # which their ends are not reported as failures
        processes = [(host, subprocess.Popen(
            self.argv(host, remote), env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
            bufsize=1, start_new_session=True)) for host, remote in jobs]
        errors: dict[str, str] = {}
        stopping = threading.Event()

        def read(host: OpsHost, process: subprocess.Popen) -> None:
            for line in process.stdout:
                on_line(host, line.rstrip("\n"))

        def read_errors(host: OpsHost, process: subprocess.Popen) -> None:
            errors[host.name] = process.stderr.read()
            returncode = process.wait()
            if on_end is not None and not stopping.is_set():
                on_end(Result(host, returncode, stderr=errors[host.name]))

        threads = [threading.Thread(target=target, args=(host, process), daemon=True)
                   for host, process in processes for target in (read, read_errors)]
        for thread in threads:
            thread.start()
        try:
            # Joined with a timeout: the kernel may hand the operator's SIGINT to any thread,
            # and Python runs signal handlers in the main thread only when it wakes; blocked
            # in a plain join on a reader that never ends (`logs -f`), it would never wake.
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.2)
            return [Result(host, process.wait(), stderr=errors.get(host.name, ""))
                    for host, process in processes]
        finally:
            stopping.set()
            for _, process in processes:
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        process.kill()

    def attach(self, host: OpsHost, remote: str, *, tty: bool,
               timeout: Optional[float] = None) -> Result:
        """`remote` on `host` with the operator's terminal (stdin, stdout, stderr): what it
        prints is the operator's, not captured. The result's stderr is empty."""
        try:
            done = subprocess.run(self.argv(host, remote, tty=tty), env=self.env,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return Result(host, None, timeout=timeout)
        return Result(host, done.returncode)
