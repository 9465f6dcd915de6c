import sys

from automations.cli.main import main

sys.exit(main())
