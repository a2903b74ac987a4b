"""Loss vs compute: every run, the best run per compute, and the compute-optimal frontier L*(C) of the
Approach-3 law with its bootstrap band.

Usage: python analysis/loss_vs_compute.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("loss_vs_compute"))
