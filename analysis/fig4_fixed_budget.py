"""SIMS Figure 4: speech validation loss and MS-tSC of models of different sizes at fixed compute
budgets.

Usage: python analysis/fig4_fixed_budget.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig4_fixed_budget"))
