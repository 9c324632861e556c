import sys

from rtc_metrics.cli import main

sys.exit(main())
