import sys

from fixtures_daemons.cli import main

sys.exit(main())
