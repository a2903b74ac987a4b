"""SIMS Figure 6: MS-sSC, MS-tSC and speech validation loss vs training steps for each variant of a
base model.

Usage: python analysis/fig6_training_curves_ssc.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig6_training_curves_ssc"))
