"""IsoLoss contours of the fitted L(N, D) with the compute-optimal frontier and the runs, one file per
variant.

Usage: python analysis/isoloss.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("isoloss"))
