"""``python -m facebrain.stimuli._contact_sheet OUT.png``: synthetic KDEF contact sheet."""

import sys

from . import main

sys.exit(main())
