import sys

from provisioning.fleet.cli import main

sys.exit(main())
