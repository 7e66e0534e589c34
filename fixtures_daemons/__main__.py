import sys

from fixtures_daemons.integrations.cli import main

sys.exit(main())
