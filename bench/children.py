"""Measurements run side by side in child processes (each with its own environment: another
member, other rules), each handing its figures back as one marked JSON line on stdout."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bench.environment import ROOT

RESULT_MARK = "BENCH-RESULT "


@dataclass(frozen=True)
class Child:
    returncode: int
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any] | None:
        """The figures the child handed back, or None when it failed before."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_MARK):
                result: dict[str, Any] = json.loads(line.removeprefix(RESULT_MARK))
                return result
        return None

    def print_failure(self) -> None:
        print(f"  FAILED (exit {self.returncode}); last lines of its error output:")
        for line in (self.stderr or self.stdout).strip().splitlines()[-12:]:
            print(f"    {line}")


def run_side_by_side(runs: Mapping[str, tuple[list[str], Mapping[str, str]]]) -> dict[str, Child]:
    """Start `python <arguments>` for every name at once, each with its environment; wait for all."""
    started = {
        name: subprocess.Popen(
            [sys.executable, *arguments],
            cwd=ROOT,
            env=dict(environment),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, (arguments, environment) in runs.items()
    }
    finished = {name: process.communicate() for name, process in started.items()}
    return {name: Child(started[name].returncode, *finished[name]) for name in started}


def hand_back(result: Mapping[str, Any]) -> None:
    """In a child: hand the figures back to the parent."""
    print(RESULT_MARK + json.dumps(result), flush=True)
