"""`python -m pneumonia_aug.cli ...` (torchrun, the kit's steps): the same as `pneumonia-aug`."""

from pneumonia_aug.cli import main

if __name__ == "__main__":
    main()
