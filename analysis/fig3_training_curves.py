"""SIMS Figures 3 and 5: MS-tSC and speech validation loss vs training steps for each variant of a base
model (one file per base model).

Usage: python analysis/fig3_training_curves.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("fig3_training_curves"))
