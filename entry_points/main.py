"""MLproject entry point `main`: `pneumonia-aug study` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["study", *sys.argv[1:]], prog_name="main")
