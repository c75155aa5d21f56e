//! Processing time as a histogram of business days: bucket `i` counts decisions that took `i`
//! business days, the last bucket that many or more. Histograms add element-wise, so the exact
//! median and 90th percentile of any set of months (or cities) come from their sum.

/// Buckets kept: 0 to 249 business days, and "250 or more" (about a business year).
pub const BUCKETS: usize = 251;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: Vec<i64>,
}

impl Histogram {
    pub fn from_counts(counts: Vec<i64>) -> Self {
        let mut histogram = Self { counts };
        histogram.trim();
        histogram
    }

    pub fn counts(&self) -> &[i64] {
        &self.counts
    }

    /// Counts one decision that took `days` business days.
    pub fn record(&mut self, days: u32) {
        let bucket = (days as usize).min(BUCKETS - 1);
        if self.counts.len() <= bucket {
            self.counts.resize(bucket + 1, 0);
        }
        self.counts[bucket] += 1;
    }

    pub fn merge(&mut self, other: &Self) {
        if self.counts.len() < other.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
    }

    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }

    /// The value PostgreSQL's `percentile_disc(fraction)` gives over the raw values: the first
    /// value (in order) whose position reaches `ceil(fraction × n)`. Computed the same way
    /// (a double, rounded up) so the two agree exactly. None when empty.
    pub fn percentile_disc(&self, fraction: f64) -> Option<u32> {
        let total = self.total();
        if total <= 0 {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        let position = ((fraction * total as f64).ceil() as i64).max(1);
        let mut seen = 0;
        for (days, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= position {
                return u32::try_from(days).ok();
            }
        }
        None
    }

    fn trim(&mut self) {
        while self.counts.last() == Some(&0) {
            self.counts.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[u32]) -> Histogram {
        let mut histogram = Histogram::default();
        for value in values {
            histogram.record(*value);
        }
        histogram
    }

    /// percentile_disc as PostgreSQL defines it, over sorted raw values.
    fn raw_disc(values: &[u32], fraction: f64) -> u32 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_precision_loss,
            clippy::cast_sign_loss
        )]
        let position = ((fraction * sorted.len() as f64).ceil() as usize).max(1);
        sorted[position - 1]
    }

    #[test]
    fn empty_has_no_percentile() {
        assert_eq!(Histogram::default().percentile_disc(0.5), None);
    }

    #[test]
    fn median_and_p90_of_small_sets() {
        assert_eq!(of(&[3]).percentile_disc(0.5), Some(3));
        assert_eq!(of(&[1, 2]).percentile_disc(0.5), Some(1));
        assert_eq!(of(&[1, 2, 3, 4]).percentile_disc(0.5), Some(2));
        assert_eq!(
            of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]).percentile_disc(0.9),
            Some(9)
        );
        assert_eq!(
            of(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]).percentile_disc(0.9),
            Some(10)
        );
        assert_eq!(of(&[0, 0, 5]).percentile_disc(0.0), Some(0));
        assert_eq!(of(&[0, 0, 5]).percentile_disc(1.0), Some(5));
    }

    #[test]
    fn merged_months_give_the_percentiles_of_all_values() {
        // A deterministic spread of values in three "months".
        let months: Vec<Vec<u32>> = (0..3u32)
            .map(|month| {
                (0..(97 + month * 31))
                    .map(|i| (i * 7 + month * 13) % 41)
                    .collect()
            })
            .collect();
        let mut merged = Histogram::default();
        for values in &months {
            merged.merge(&of(values));
        }
        let all: Vec<u32> = months.concat();
        for fraction in [0.1, 0.25, 0.5, 0.75, 0.9, 0.99] {
            assert_eq!(
                merged.percentile_disc(fraction),
                Some(raw_disc(&all, fraction)),
                "{fraction}"
            );
        }
        assert_eq!(merged.total(), all.len() as i64);
    }

    #[test]
    fn long_waits_share_the_last_bucket() {
        let histogram = of(&[1, 400, 1000]);
        assert_eq!(histogram.counts().len(), BUCKETS);
        assert_eq!(histogram.counts()[BUCKETS - 1], 2);
        assert_eq!(histogram.percentile_disc(0.9), Some(250));
    }

    #[test]
    fn trailing_zeros_are_dropped() {
        assert_eq!(
            Histogram::from_counts(vec![1, 0, 2, 0, 0]).counts(),
            &[1, 0, 2]
        );
    }
}
