"""Studies: study files and their plans, the run store (writing and reading), progress
and the executors that run a plan (serial, local processes, Ray)."""

from actlab.study.frames import StudyView
from actlab.study.plan import Study, StudyError, load_study, parse_study
from actlab.study.store import Store, StoreError, open_store

__all__ = [
    "Store",
    "StoreError",
    "Study",
    "StudyError",
    "StudyView",
    "load_study",
    "open_store",
    "parse_study",
]
