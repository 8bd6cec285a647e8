"""MLproject entry point `generate`: `pneumonia-aug generate` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["generate", *sys.argv[1:]], prog_name="generate")
