"""The ``actlab`` command line: one typer application whose commands live in three
modules by concern: :mod:`~actlab.cli.run` (plan, run, train, lr-find),
:mod:`~actlab.cli.store` (report, status, runs, export, delete) and
:mod:`~actlab.cli.inspect` (list, models, data, theory). Every expected error (a bad
study file, an unknown name, a missing dataset, an unusable store) is printed as one
clear message with a non-zero exit status, never as a traceback.
"""

# Importing the command modules registers their commands, in this order in --help.
from actlab.cli import run, store, inspect  # noqa: F401, I001
from actlab.cli.common import app

__all__ = ["app"]
