"""``python -m llm.theory``."""

import sys

from llm.theory.cli import main

sys.exit(main())
