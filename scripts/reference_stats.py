#!/usr/bin/env python3
"""Reference numbers for the study's statistics (src/study/stats/tests.rs), from SciPy and NumPy.

Prints Rust constants: Student-t quantiles, CDF and density values; paired t intervals
(scipy.stats.ttest_rel); detectable effects at 80% power and the seeds a +1.6-point effect needs;
the exact seed-level bootstrap distribution (all n^n resamples enumerated) and the exact standard
error of the two-level bootstrap, with the Monte Carlo spread of a 10,000-resample estimate, so
the Rust tests can hold the seeded bootstrap to a tolerance that is not a guess.

    python3 -m venv .venv-scipy && .venv-scipy/bin/pip install scipy numpy
    .venv-scipy/bin/python scripts/reference_stats.py
"""
import itertools

import numpy as np
import scipy
from scipy import stats

LEVEL, POWER, PAPER_GAIN = 0.95, 0.8, 1.6


def rust(x):
    """A float literal Rust accepts (repr round-trips exactly; integers get a `.0`)."""
    return repr(float(x))


def detectable(sd, n):
    df = n - 1
    return (stats.t.ppf(0.5 + LEVEL / 2, df) + stats.t.ppf(POWER, df)) * sd / np.sqrt(n)


def seeds_needed(sd, effect, cap=100_000):
    for n in range(2, cap + 1):
        if detectable(sd, n) <= abs(effect):
            return n
    return None


def main():
    print(f"// scipy {scipy.__version__}, numpy {np.__version__}")

    print("// (p, df, t.ppf(p, df))")
    print("const T_QUANTILES: &[(f64, f64, f64)] = &[")
    for df in [1, 2, 3, 4, 5, 9, 29, 100, 2.5, 0.7]:
        for p in [0.975, 0.8, 0.995, 0.6, 0.025, 0.9995]:
            print(f"    ({rust(p)}, {rust(df)}, {rust(stats.t.ppf(p, df))}),")
    print("];")

    print("// (t, df, t.cdf(t, df), t.pdf(t, df))")
    print("const T_CDF: &[(f64, f64, f64, f64)] = &[")
    for t, df in [(0.0, 3), (1e-9, 4), (0.5, 1), (-1.3, 2), (2.2, 7), (-4.0, 12), (10.0, 3), (30.0, 50), (1.7, 0.5)]:
        print(f"    ({rust(t)}, {rust(df)}, {rust(stats.t.cdf(t, df))}, {rust(stats.t.pdf(t, df))}),")
    print("];")

    # Paired t intervals: synthetic arms and the MRPC study's last-epoch dev accuracy (x100),
    # static grad-norm against uniform r = 2, seeds 0, 13, 42 (results/mrpc/children).
    cases = {
        "SYNTH": ([81.2, 79.9, 83.4, 80.1, 82.0], [80.0, 80.3, 81.1, 78.9, 80.2]),
        "MRPC_STATIC_GRAD_NORM": (
            [72.54901960784314, 71.32352941176471, 70.83333333333334],
            [73.03921568627452, 70.34313725490196, 77.45098039215686],
        ),
    }
    for name, (a, b) in cases.items():
        a, b = np.array(a), np.array(b)
        d = a - b
        res = stats.ttest_rel(a, b)
        ci = res.confidence_interval(LEVEL)
        sd = d.std(ddof=1)
        print(f"// {name}: ttest_rel(a, b), 95% interval; SD_d; detectable effect at 80% power; seeds for +1.6")
        print(f"const {name}_A: &[f64] = &[{', '.join(map(rust, a))}];")
        print(f"const {name}_B: &[f64] = &[{', '.join(map(rust, b))}];")
        print(
            f"const {name}_T: (f64, f64, f64, f64, f64, usize) = ({rust(d.mean())}, {rust(ci.low)}, {rust(ci.high)}, {rust(sd)}, {rust(detectable(sd, len(d)))}, {seeds_needed(sd, PAPER_GAIN)});"
        )

    print("// (sd, n, detectable effect, seeds for a 1.6 effect)")
    print("const DETECTABLE: &[(f64, usize, f64, usize)] = &[")
    for sd, n in [(1.0, 2), (1.0, 3), (4.18, 3), (2.5, 5), (0.5, 10), (3.0, 30)]:
        print(f"    ({rust(sd)}, {n}, {rust(detectable(sd, n))}, {seeds_needed(sd, PAPER_GAIN)}),")
    print("];")

    # numpy.percentile's default (linear) interpolation, which the Rust percentile copies.
    xs = np.array([3.5, -1.0, 2.25, 7.0, 0.5, 4.75, -2.5])
    print(f"const PCT_DATA: &[f64] = &[{', '.join(map(rust, sorted(xs)))}];")
    print("const PCT: &[(f64, f64)] = &[")
    for q in [0.0, 0.025, 0.1, 0.5, 0.77, 0.975, 1.0]:
        print(f"    ({rust(q)}, {rust(np.percentile(xs, 100 * q))}),")
    print("];")

    # Seed-level bootstrap: all n^n resamples are equally likely, so the bootstrap distribution
    # of the mean is known exactly; the percentiles of 10,000 draws scatter around its quantiles.
    d = np.array([-0.49, 0.98, -6.62, 1.5, -2.1])
    n = len(d)
    means = np.array([np.mean(c) for c in itertools.product(d, repeat=n)])
    means.sort()
    exact_se = np.sqrt(np.mean((d - d.mean()) ** 2) / n)
    lo_q = np.quantile(means, 0.025, method="inverted_cdf")
    hi_q = np.quantile(means, 0.975, method="inverted_cdf")
    rng = np.random.default_rng(1)
    mc = [rng.choice(d, size=(10_000, n)).mean(axis=1) for _ in range(200)]
    lo_sd = np.std([np.percentile(m, 2.5) for m in mc])
    hi_sd = np.std([np.percentile(m, 97.5) for m in mc])
    print("// seed-level bootstrap of SEED_DIFFS: exact SE, exact 2.5%/97.5% quantiles of the")
    print("// n^n-resample distribution, and the spread (sd) of 10,000-resample percentile estimates")
    print(f"const SEED_DIFFS: &[f64] = &[{', '.join(map(rust, d))}];")
    print(
        f"const SEED_BOOT: (f64, f64, f64, f64, f64) = ({rust(exact_se)}, {rust(lo_q)}, {rust(hi_q)}, {rust(lo_sd)}, {rust(hi_sd)});"
    )

    # Two-level bootstrap of per-example differences in {-1, 0, 1}: the resampled statistic has
    # variance (1/n) [popvar(seed means) + mean(popvar within seed) / m].
    groups = []
    g_rng = np.random.default_rng(7)
    for shift in [0.1, -0.05, 0.2, 0.0]:
        m = 50
        a = (g_rng.random(m) < 0.7 + shift / 2).astype(float)
        b = (g_rng.random(m) < 0.7).astype(float)
        groups.append((a - b).tolist())
    G = [np.array(g) for g in groups]
    n = len(G)
    mus = np.array([g.mean() for g in G])
    within = np.array([g.var() / len(g) for g in G])
    se2 = np.sqrt((np.mean((mus - mus.mean()) ** 2) + within.mean()) / n)

    def two_level(rng, reps):
        out = np.empty(reps)
        for r in range(reps):
            pick = rng.integers(0, n, size=n)
            out[r] = np.mean([G[k][rng.integers(0, len(G[k]), size=len(G[k]))].mean() for k in pick])
        return out

    big = two_level(np.random.default_rng(3), 200_000)
    reps = [two_level(np.random.default_rng(100 + i), 10_000) for i in range(40)]
    lo_sd2 = np.std([np.percentile(r, 2.5) for r in reps])
    hi_sd2 = np.std([np.percentile(r, 97.5) for r in reps])
    print("// two-level bootstrap of GROUPS (per-example differences per seed): exact mean and SE,")
    print("// 2.5%/97.5% percentiles of 200,000 resamples, spread of 10,000-resample estimates")
    print("const GROUPS: &[&[f64]] = &[")
    for g in groups:
        print("    &[" + ", ".join(rust(x) for x in g) + "],")
    print("];")
    print(
        f"const GROUPS_BOOT: (f64, f64, f64, f64, f64, f64) = ({rust(mus.mean())}, {rust(se2)}, {rust(np.percentile(big, 2.5))}, {rust(np.percentile(big, 97.5))}, {rust(lo_sd2)}, {rust(hi_sd2)});"
    )


if __name__ == "__main__":
    main()
