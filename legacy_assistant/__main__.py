import sys

from legacy_assistant.cli import main

sys.exit(main())
