"""Reference values for tests/data/glue_metrics.rs, computed with scikit-learn and SciPy.

Run: python3 scripts/reference_metrics.py
Prints Rust literals: the inputs (seeded NumPy draws) and the metrics that
sklearn.metrics.{accuracy_score,f1_score,matthews_corrcoef} and scipy.stats.{pearsonr,spearmanr}
give for them. Scores are rounded to 0.2 steps so Spearman has ties to average.
"""
import numpy as np
import scipy, sklearn
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

rng = np.random.default_rng(20240611)
n = 61
labels = rng.integers(0, 2, n)
flip = rng.random(n) < 0.3
preds = np.where(flip, 1 - labels, labels)
# A heavily skewed case (CoLA-like: mostly 1).
labels2 = (rng.random(n) < 0.7).astype(int)
preds2 = np.where(rng.random(n) < 0.2, 1 - labels2, labels2)
preds2[:5] = 1
gold = np.round(rng.uniform(0, 5, n) / 0.2) * 0.2
pred_s = np.round((gold + rng.normal(0, 1.0, n)) / 0.2) * 0.2
gold = gold.astype(np.float32)
pred_s = pred_s.astype(np.float32)

def lit(xs, fmt):
    return "[" + ", ".join(fmt(x) for x in xs) + "]"

print(f"// scipy {scipy.__version__}, scikit-learn {sklearn.__version__}")
print("const LABELS: [u32; %d] = %s;" % (n, lit(labels, str)))
print("const PREDS: [u32; %d] = %s;" % (n, lit(preds, str)))
print("const LABELS2: [u32; %d] = %s;" % (n, lit(labels2, str)))
print("const PREDS2: [u32; %d] = %s;" % (n, lit(preds2, str)))
print("const GOLD: [f32; %d] = %s;" % (n, lit(gold, lambda x: repr(float(x)))))
print("const PRED_S: [f32; %d] = %s;" % (n, lit(pred_s, lambda x: repr(float(x)))))
print("const ACC: f64 = %r;" % accuracy_score(labels, preds))
print("const F1: f64 = %r;" % f1_score(labels, preds))
print("const MCC: f64 = %r;" % matthews_corrcoef(labels, preds))
print("const ACC2: f64 = %r;" % accuracy_score(labels2, preds2))
print("const F1_2: f64 = %r;" % f1_score(labels2, preds2))
print("const MCC2: f64 = %r;" % matthews_corrcoef(labels2, preds2))
g64, p64 = gold.astype(np.float64), pred_s.astype(np.float64)
print("const PEARSON: f64 = %r;" % float(pearsonr(p64, g64)[0]))
print("const SPEARMAN: f64 = %r;" % float(spearmanr(p64, g64)[0]))
