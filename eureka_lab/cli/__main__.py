"""``python -m eureka_lab.cli``, as the ``eureka-lab`` command."""

import sys

from eureka_lab.cli import main

sys.exit(main())
