import sys

from kmc.pipeline.cli import main

sys.exit(main())
