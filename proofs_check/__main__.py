import sys

from proofs_check.runner import main

sys.exit(main())
