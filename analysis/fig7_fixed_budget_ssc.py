"""SIMS Figure 7: MS-sSC of models of different sizes at fixed compute budgets.

Usage: python analysis/fig7_fixed_budget_ssc.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig7_fixed_budget_ssc"))
