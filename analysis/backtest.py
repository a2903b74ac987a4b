"""Back-test: the law fitted on the runs below the largest compute budget predicts the runs in it
(predicted vs observed loss).

Usage: python analysis/backtest.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("backtest"))
