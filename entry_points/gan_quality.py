"""MLproject entry point `gan_quality`: `pneumonia-aug gan-quality` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["gan-quality", *sys.argv[1:]], prog_name="gan_quality")
