"""MLproject entry point `train_gan`: `pneumonia-aug train-gan` with the same parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["train-gan", *sys.argv[1:]], prog_name="train_gan")
