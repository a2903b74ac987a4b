"""Small results tables for the figure tests, built by hand from known laws (no training).

``study_table`` looks like the output of ``scaling collect`` for a SIMS-style IsoFLOP sweep: two
variants (interleaved from a text LM, textless from scratch), six sizes, four compute budgets,
three evaluation points per run, losses from a Chinchilla law with small noise, accuracies (held
as fractions, as a user's table may) that improve as the loss falls, and cross-modal columns.
``families_table`` holds runs initialised from three text LMs after the same steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LAWS = {  # E, A, B, alpha, beta
    ("interleaved", "text-lm"): (1.6, 120.0, 300.0, 0.34, 0.28),
    ("speech", "scratch"): (1.9, 90.0, 500.0, 0.30, 0.30),
}
SIZES = (0.5e6, 1.0e6, 2.0e6, 4.0e6, 8.0e6, 16.0e6)
BUDGETS = (3.0e15, 1.0e16, 3.0e16, 1.0e17)  # each has its loss minimum inside SIZES


def _loss(law, n, d):
    e, a, b, alpha, beta = law
    return e + a / n**alpha + b / d**beta


def _accuracies(loss: float, rng) -> dict[str, float]:
    """Fractions in [0.5, 1) that rise as the loss falls."""
    skill = float(np.clip((5.0 - loss) / 3.0, 0.0, 1.0))
    scales = {"acc_sblimp": 0.12, "acc_ssc": 0.10, "acc_stc": 0.35, "acc_ms_ssc": 0.08, "acc_ms_stc": 0.30,
              "acc_swuggy": 0.2}
    return {name: float(np.clip(0.5 + scale * skill + rng.normal(0, 0.002), 0.5, 0.99)) for name, scale in scales.items()}


def study_table(seed: int = 0, eval_points: int = 3) -> pd.DataFrame:
    """A SIMS-style IsoFLOP sweep as a results table (one row per run × evaluation point)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (mode, init), law in LAWS.items():
        for c in BUDGETS:
            for n in SIZES:
                d_total = c / (6 * n)
                run_id = f"{mode[:2]}-{init[:2]}-{n:.0e}-{c:.0e}"
                for k in range(1, eval_points + 1):
                    d = d_total * k / eval_points
                    loss = _loss(law, n, d) * (1 + rng.normal(0, 0.004))
                    acc = _accuracies(loss, rng)
                    final = k == eval_points
                    rows.append({
                        "run_id": run_id, "name": f"llama-{n / 1e6:g}M-{mode}-{init}-{c:.0e}", "sweep": "fixture",
                        "status": "done", "final": final, "step": round(d / 4096), "tokens": d,
                        "tokens_speech": d * (0.6 if mode == "interleaved" else 1.0),
                        "tokens_text": d * (0.4 if mode == "interleaved" else 0.0),
                        "params_total": n, "params_non_embedding": 0.9 * n, "flops_6nd": 6 * n * d,
                        "loss_train": loss * 1.02, "loss_val": loss,
                        "loss_val_speech": loss + (0.3 if mode == "interleaved" else 0.0),
                        **acc,
                        "acc_ms_ssc_s2t": acc["acc_ms_ssc"] + 0.03, "acc_ms_ssc_t2s": acc["acc_ms_ssc"] + 0.01,
                        "acc_ms_ssc_t2t": 0.7, "acc_ms_ssc_textlm": 0.72,
                        "acc_ms_stc_s2t": acc["acc_ms_stc"] + 0.05, "acc_ms_stc_t2s": acc["acc_ms_stc"] + 0.02,
                        "acc_ms_stc_t2t": 0.95, "acc_ms_stc_textlm": 0.96,
                        "model_family": "llama", "model_size": f"{n / 1e6:g}M", "data_mode": mode, "data_corpus": "demo",
                        "init": init, "init_from": "pretrain:300k" if init == "text-lm" else "", "seed": 0,
                        "train_tokens": d_total,
                    })
    return pd.DataFrame(rows)


def families_table() -> pd.DataFrame:
    """Interleaved runs from three text LMs (two sizes of one), evaluated every 1,000 steps to 4,000."""
    specs = [("qwen2", "0.5B", 4.9e8, 0.80, "/models/Qwen2.5-0.5B"), ("qwen2", "1.5B", 1.5e9, 0.84, "/models/Qwen2.5-1.5B"),
             ("llama", "1B", 1.2e9, 0.78, "/models/Llama-3.2-1B"), ("opt", "125M", 1.25e8, 0.66, "/models/opt-125m")]
    rows = []
    for family, size, n, top, path in specs:
        for step in (1000, 2000, 3000, 4000):
            grow = step / 4000
            rows.append({"run_id": f"{family}-{size}", "name": f"{family}-{size}", "status": "done", "final": step == 4000,
                         "step": step, "tokens": step * 1e5, "params_total": n, "flops_6nd": 6 * n * step * 1e5,
                         "loss_val": 3.0 - 0.5 * top * grow, "acc_ms_ssc": 0.5 + (top - 0.6) * grow,
                         "acc_ms_stc": 0.5 + (top - 0.5) * grow, "model_family": family, "model_size": size,
                         "data_mode": "interleaved", "init": "text-lm", "init_from": path})
    return pd.DataFrame(rows)
