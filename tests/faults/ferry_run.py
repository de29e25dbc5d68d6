"""One ``ferry cp`` run as a real subprocess: started, signalled, waited for (always bounded),
and described in full when a cell fails, so the failure names the command and what it said."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Any

# Variables worth showing in a failure: how the run was pointed at its store.
_SHOWN_ENV = ("AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST")
RUN_LIMIT = 120.0  # seconds: a run still going then is killed and reported as hung


def ferry_command() -> list[str]:
    """The installed ``ferry`` entry point beside this interpreter (the venv's), as a user runs it."""
    script = os.path.join(os.path.dirname(sys.executable), "ferry")
    return [script] if os.access(script, os.X_OK) else [sys.executable, "-m", "ferry_provider.cli"]


@dataclass
class FerryRun:
    args: list[str]  # after ``ferry cp``
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    hung: bool = False
    waited: float = RUN_LIMIT  # the bound of the last wait, for the message of a hung run
    signals: list[str] = field(default_factory=list)
    # time.monotonic() when it was started and when it was seen to have ended (at or after its
    # real end): a run started after another ended is a rerun, not a concurrent writer.
    started: float = 0.0
    ended: float | None = None
    _out: IO[bytes] | None = None
    _err: IO[bytes] | None = None

    @classmethod
    def start(cls, args: list[str], env: dict[str, str], workdir: str) -> FerryRun:
        run = cls(args, env, started=time.monotonic())
        # Files, not pipes: a run that is never read from (it hangs, or is killed) cannot block on
        # a full pipe; they live in the cell's directory and go with it.
        run._out = tempfile.TemporaryFile(dir=workdir)  # noqa: SIM115 - closed in _collect()
        run._err = tempfile.TemporaryFile(dir=workdir)  # noqa: SIM115 - closed in _collect()
        run.proc = subprocess.Popen(
            [*ferry_command(), "cp", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=run._out,
            stderr=run._err,
            start_new_session=True,  # a Ctrl-C of the test run does not reach it twice
        )
        return run

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.signals.append(sig.name)
        self.proc.send_signal(sig)

    def wait(self, timeout: float = RUN_LIMIT) -> bool:
        """Wait for the run to end; past ``timeout`` kill it, mark it hung, return False."""
        assert self.proc is not None
        self.waited = timeout
        try:
            self.proc.wait(timeout)
            ended = True
        except subprocess.TimeoutExpired:
            self.hung = True
            self.proc.kill()
            self.proc.wait(10)
            ended = False
        self._collect()
        return ended

    def stop(self) -> None:
        """Kill a run still going (a cell that failed part-way) and collect what it said."""
        if self.running():
            self.wait(0)

    def _collect(self) -> None:
        assert self.proc is not None and self._out is not None and self._err is not None
        if self._out.closed:
            return
        self.returncode = self.proc.returncode
        self.ended = time.monotonic()
        for stream, name in ((self._out, "stdout"), (self._err, "stderr")):
            stream.seek(0)
            setattr(self, name, stream.read().decode(errors="replace"))
            stream.close()

    # -- what it said --------------------------------------------------------------------------
    @property
    def rows(self) -> list[dict[str, Any]]:
        """The manifest rows on stdout (one JSON object per line); a line that is not one is
        kept as ``{"unparsed": line}`` so a cell can say so."""
        found = []
        for line in self.stdout.splitlines():
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError:
                value = {"unparsed": line}
            found.append(value if isinstance(value, dict) else {"unparsed": line})
        return found

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe(self) -> str:
        """The command, how it ended, its last stderr line and its row: for failure messages."""
        shown = " ".join(f"{k}={self.env[k]}" for k in _SHOWN_ENV if k in self.env)
        command = " ".join(["ferry", "cp", *self.args])
        if self.hung:
            ended = f"still running after {self.waited:.0f}s: killed"
        elif self.returncode is not None and self.returncode < 0:
            ended = f"killed by {signal.Signals(-self.returncode).name}"
        else:
            ended = f"exit {self.returncode}"
        if self.signals:
            ended += f" (sent {', '.join(self.signals)})"
        last = self.stderr_lines[-1] if self.stderr_lines else "(stderr empty)"
        rows = self.rows
        row = (
            f"row: {rows[0].get('result')}: {rows[0].get('description')}"
            if len(rows) == 1
            else f"{len(rows)} rows on stdout"
        )
        return f"`{shown + ' ' if shown else ''}{command}` -> {ended}; stderr: {last[:400]}; {row[:400]}"
