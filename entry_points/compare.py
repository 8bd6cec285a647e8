"""MLproject entry point `compare`: `pneumonia-aug compare` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["compare", *sys.argv[1:]], prog_name="compare")
