"""SIMS Figure 1: validation loss, sBLIMP, sSC and tSC vs training compute for the best run per compute
of each variant, with power-law fits and the textless trends of Cuervo & Marxer (2024).

Usage: python analysis/fig1_metric_vs_compute.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig1_metric_vs_compute"))
