"""IsoFLOP profiles: loss vs parameters per compute budget with the fitted parabolas, their bootstrap
bands and minima (Approach 2), one file per variant.

Usage: python analysis/isoflop.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("isoflop"))
