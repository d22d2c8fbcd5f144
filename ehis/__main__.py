import sys

from ehis.cli import main

sys.exit(main())
