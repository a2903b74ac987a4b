"""Relative residuals of the Approach-3 fit vs compute, per variant.

Usage: python analysis/residuals.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("residuals"))
