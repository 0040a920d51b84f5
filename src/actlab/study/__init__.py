"""Studies: run specs, study files, the run store and executors."""

from actlab.study.plan import Study, StudyError, load_study, parse_study
from actlab.study.spec import RunSpec
from actlab.study.store import Store, StoreError, StudyView, open_store

__all__ = [
    "RunSpec",
    "Store",
    "StoreError",
    "Study",
    "StudyError",
    "StudyView",
    "load_study",
    "open_store",
    "parse_study",
]
