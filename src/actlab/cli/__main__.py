"""``python -m actlab.cli``: the ``actlab`` command."""

import sys

from actlab.cli import app

sys.exit(app())
