//! Pure analytics over read-model data (DOMAIN.md Part B §1.4), with an explicit `as_of`.

use ats_events::Timestamp;
use serde::{Deserialize, Serialize};

/// Mean of `values` (0 when empty).
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// Sample variance (n − 1 denominator, as Python's `statistics.variance`); 0 below 2 values.
pub fn sample_variance(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let m = mean(values);
    values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64
}

/// Ordinary least-squares slope of `ys` against x = 0, 1, …, n − 1 (0 below 2 values).
pub fn ols_slope(ys: &[f64]) -> f64 {
    let n = ys.len();
    if n < 2 {
        return 0.0;
    }
    let x_mean = (n - 1) as f64 / 2.0;
    let y_mean = mean(ys);
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        let dx = i as f64 - x_mean;
        num += dx * (y - y_mean);
        den += dx * dx;
    }
    if den == 0.0 {
        0.0
    } else {
        num / den
    }
}

/// Seed `calculate_learning_velocity`: scores in start-time order; fewer than 3 → 0;
/// `clamp(slope / 0.1, 0, 1)` (0.1 per session is the maximum velocity).
pub fn learning_velocity(scores_by_start_time: &[f64]) -> f64 {
    if scores_by_start_time.len() < 3 {
        return 0.0;
    }
    (ols_slope(scores_by_start_time) / 0.1).clamp(0.0, 1.0)
}

/// [`learning_velocity`] from running sums of the scores in start order: their count `n`,
/// `Σ y` and `Σ i·y` (i = 0, 1, …, n − 1). A fold keeps the sums, so the velocity of a long
/// history costs O(1) per session instead of a pass over every score. Equal to the two-pass
/// slope up to rounding (Σ(x − x̄)(y − ȳ) = Σxy − x̄Σy, Σ(x − x̄)² = n(n² − 1)/12).
pub fn learning_velocity_from_sums(n: u64, sum_y: f64, sum_iy: f64) -> f64 {
    if n < 3 {
        return 0.0;
    }
    let n = n as f64;
    let (a, b) = (sum_iy, (n - 1.0) / 2.0 * sum_y);
    // A difference within the rounding error of the two sums is zero: a flat series must
    // give exactly the 0 the two-pass formula gives, not ±1e-16.
    let centred = if (a - b).abs() <= (a.abs() + b.abs()) * n * f64::EPSILON {
        0.0
    } else {
        a - b
    };
    let slope = centred / (n * (n * n - 1.0) / 12.0);
    (slope / 0.1).clamp(0.0, 1.0)
}

/// Seed `detect_plateau(window_size=5)`: the last 5 scores (start-time order) have sample
/// variance < 0.01 and mean < 0.9. Fewer than 5 sessions → false.
pub fn detect_plateau(scores_by_start_time: &[f64]) -> bool {
    const WINDOW: usize = 5;
    if scores_by_start_time.len() < WINDOW {
        return false;
    }
    let last = &scores_by_start_time[scores_by_start_time.len() - WINDOW..];
    sample_variance(last) < 0.01 && mean(last) < 0.9
}

/// Seed `calculate_trend` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Trend {
    /// `positive`, `negative`, `neutral` or `insufficient_data`.
    pub trend: String,
    /// `improving`, `declining`, `stable` or `unknown`.
    pub direction: String,
    /// (second half mean − first half mean) / max(0.01, first half mean).
    pub change_rate: f64,
    /// Mean of the second half.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_avg: Option<f64>,
    /// Mean of the first half.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_avg: Option<f64>,
    /// Points in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_size: Option<usize>,
}

impl Trend {
    fn insufficient() -> Self {
        Self {
            trend: "insufficient_data".into(),
            direction: "unknown".into(),
            change_rate: 0.0,
            current_avg: None,
            previous_avg: None,
            sample_size: None,
        }
    }
}

/// Seed `calculate_trend(metrics, window_days)`: points with `timestamp >= as_of − window`
/// in time order, split in halves at n/2.
pub fn calculate_trend(points: &[(Timestamp, f64)], window_days: i64, as_of: Timestamp) -> Trend {
    let cutoff = as_of.plus_seconds(-window_days * 86_400);
    let mut kept: Vec<(Timestamp, f64)> = points
        .iter()
        .copied()
        .filter(|(t, _)| *t >= cutoff && *t <= as_of)
        .collect();
    if kept.len() < 2 {
        return Trend::insufficient();
    }
    kept.sort_by_key(|p| p.0);
    let values: Vec<f64> = kept.iter().map(|(_, v)| *v).collect();
    let half = values.len() / 2;
    let first = mean(&values[..half]);
    let second = mean(&values[half..]);
    let change_rate = (second - first) / first.max(0.01);
    let (trend, direction) = if change_rate > 0.1 {
        ("positive", "improving")
    } else if change_rate < -0.1 {
        ("negative", "declining")
    } else {
        ("neutral", "stable")
    };
    Trend {
        trend: trend.into(),
        direction: direction.into(),
        change_rate,
        current_avg: Some(second),
        previous_avg: Some(first),
        sample_size: Some(values.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn velocity_matches_hand_computed_slope() {
        // Scores rise 0.05 per session: slope 0.05 → velocity 0.5.
        let v = learning_velocity(&[0.5, 0.55, 0.6, 0.65]);
        assert!((v - 0.5).abs() < 1e-12, "{v}");
        assert_eq!(learning_velocity(&[0.9, 0.5, 0.1]), 0.0);
        assert_eq!(learning_velocity(&[0.1, 0.9]), 0.0);
        assert_eq!(learning_velocity(&[0.0, 0.5, 1.0]), 1.0);
    }

    #[test]
    fn a_flat_series_has_no_velocity_from_sums() {
        for n in [3u64, 10, 97, 1000, 20_000] {
            for score in [0.85, 0.1, 1.0 / 3.0, 0.999] {
                let (mut sum_y, mut sum_iy) = (0.0, 0.0);
                for i in 0..n {
                    sum_y += score;
                    sum_iy += i as f64 * score;
                }
                assert_eq!(
                    learning_velocity_from_sums(n, sum_y, sum_iy),
                    0.0,
                    "{n} × {score}"
                );
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn velocity_from_sums_equals_the_two_pass_slope(
            scores in proptest::collection::vec(0.0f64..=1.0, 0..400),
        ) {
            let sum_y: f64 = scores.iter().sum();
            let sum_iy: f64 = scores.iter().enumerate().map(|(i, y)| i as f64 * y).sum();
            let fast = learning_velocity_from_sums(scores.len() as u64, sum_y, sum_iy);
            let reference = learning_velocity(&scores);
            proptest::prop_assert!((fast - reference).abs() < 1e-9, "{} vs {}", fast, reference);
        }
    }

    #[test]
    fn plateau_rule_is_the_seeds() {
        assert!(detect_plateau(&[0.1, 0.7, 0.71, 0.7, 0.72, 0.7]));
        // Mean ≥ 0.9 is mastery, not a plateau.
        assert!(!detect_plateau(&[0.92, 0.93, 0.92, 0.93, 0.92]));
        assert!(!detect_plateau(&[0.7, 0.7, 0.7, 0.7]));
        // Variance 0.025 ≥ 0.01.
        assert!(!detect_plateau(&[0.5, 0.6, 0.7, 0.8, 0.9]));
    }

    #[test]
    fn trend_halves_and_window() {
        let day = |d: i64| {
            Timestamp::parse_rfc3339("2026-11-01T00:00:00Z")
                .unwrap()
                .plus_seconds(d * 86_400)
        };
        let points = [
            (day(0), 1.0),
            (day(5), 0.5),
            (day(6), 0.5),
            (day(7), 0.7),
            (day(8), 0.8),
        ];
        let t = calculate_trend(&points, 7, day(8));
        // Day 0 is outside the window; halves [0.5, 0.5] and [0.7, 0.8].
        assert_eq!(t.sample_size, Some(4));
        assert!((t.change_rate - 0.5).abs() < 1e-12);
        assert_eq!(
            (t.trend.as_str(), t.direction.as_str()),
            ("positive", "improving")
        );
        assert_eq!(
            calculate_trend(&points[..1], 7, day(0)).trend,
            "insufficient_data"
        );
    }
}
