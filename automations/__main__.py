import sys

from automations.cli import main

sys.exit(main())
