"""``python -m kmc``: the ``kmc`` command, which lives in the analysis layer.

``kmc`` never imports ``analysis`` (docs/architecture.md), but ``python -m kmc run FILE``
must do what the ``kmc`` command does: rows, then summaries and figures. So this module
replaces its own process by ``python -m analysis.cli`` with the same arguments. exec, not
a child process: the pid stays the same, so Ctrl-C and kill reach the run itself.
"""
import os
import sys

argv = [sys.executable, "-m", "analysis.cli", *sys.argv[1:]]
sys.stdout.flush()
sys.stderr.flush()
os.execv(sys.executable, argv)
