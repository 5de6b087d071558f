"""`python app.py`: open ViT Workbench."""

import sys

from workbench.ui import main

if __name__ == "__main__":
    sys.exit(main())
