"""SIMS Figure 2: runs initialised from different text LMs after the same number of steps (MS-sSC, MS-
tSC, validation loss), sorted by size.

Usage: python analysis/fig2_text_lm_families.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig2_text_lm_families"))
