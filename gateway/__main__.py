"""``python -m gateway --config gateway.toml``: the resident process (see gateway.daemon)."""

import sys

from gateway.daemon import main

sys.exit(main())
