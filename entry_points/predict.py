"""MLproject entry point `predict`: `pneumonia-aug predict` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["predict", *sys.argv[1:]], prog_name="predict")
