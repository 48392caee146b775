"""``python -m mcunet_tvm.nas`` (see :mod:`mcunet_tvm.nas.cli`)."""

import sys

from .cli import main

sys.exit(main())
