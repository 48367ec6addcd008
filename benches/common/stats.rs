//! Statistics over rounds: the spread (min, median, max) of figures and of per-round ratios,
//! the figures' formatting, and the interleaving of contenders in rounds.

/// Min, median and max of a sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// Smallest value.
    pub min: f64,
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (NaN values are ignored); `None` if there is none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Some(Spread {
            min: v[0],
            median,
            max: v[n - 1],
        })
    }

    /// The spread of the per-round ratios `ours[i] / reference[i]`.
    pub fn of_ratios(ours: &[f64], reference: &[f64]) -> Option<Spread> {
        let ratios: Vec<f64> = ours
            .iter()
            .zip(reference)
            .filter(|(_, r)| **r != 0.0)
            .map(|(o, r)| o / r)
            .collect();
        Spread::of(&ratios)
    }
}

/// Formats a figure with 3-4 significant digits.
pub fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        return "n/a".into();
    }
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.3}M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// Runs `rounds` interleaved rounds of `n` contenders: each round runs every contender once,
/// alternating the order between rounds (0 1 2 .., then .. 2 1 0) so that a drift of the host's
/// speed does not favour whoever runs first. `run(round, contender)` returns the figure of one
/// run (NaN when the contender could not run). Returns the figures per contender, by round.
pub fn interleave(rounds: usize, n: usize, mut run: impl FnMut(usize, usize) -> f64) -> Vec<Vec<f64>> {
    let mut out = vec![Vec::with_capacity(rounds); n];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..n).collect()
        } else {
            (0..n).rev().collect()
        };
        let mut figures = vec![f64::NAN; n];
        for c in order {
            figures[c] = run(round, c);
        }
        for (c, f) in figures.into_iter().enumerate() {
            out[c].push(f);
        }
    }
    out
}
