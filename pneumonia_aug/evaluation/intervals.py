"""What a row of Table 1's difference is over, and whether its p decides anything yet: the
words `table` writes into a row and the reports read back (from the frame or its CSV), in a
module light enough for the terminal and the UI pages to import without the statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd

SEEDS, TEST_SET = "seeds", "test set only"  # what a row's interval is over


def is_interim(row: pd.Series) -> bool:
    """A planned row short of its planned seeds (`interim`): its p decides nothing yet."""
    return row.get("interim") is True or row.get("interim") is np.True_
