"""MLproject entry point `train_classifier`: `pneumonia-aug train-classifier` with the same
parameters."""

import sys

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main(["train-classifier", *sys.argv[1:]], prog_name="train_classifier")
