//! The Monitor's chart: events per time bucket over the chosen range, as bars of an SVG the
//! server draws (no script, no inline style: the bars' geometry is SVG attributes).

use jiff::Timestamp;

use crate::web::pages::policies::when;

/// Bucket widths the chart picks from, in seconds: the first that draws at most
/// [`MAX_BARS`] bars over the range.
const WIDTHS: &[i64] = &[
    60,
    5 * 60,
    15 * 60,
    30 * 60,
    3600,
    3 * 3600,
    6 * 3600,
    12 * 3600,
    86_400,
    7 * 86_400,
    30 * 86_400,
];

/// The most bars a chart draws (fewer for short ranges).
const MAX_BARS: i64 = 60;

/// The width of a bar's slot in the SVG's own units.
const SLOT: i64 = 10;

/// The height of the drawing in the SVG's own units.
pub(crate) const HEIGHT: i64 = 100;

/// The bucket width (milliseconds) for a range from `start` to `end`.
pub(crate) fn bucket_ms(start: Timestamp, end: Timestamp) -> i64 {
    let span = (end.as_second() - start.as_second()).max(1);
    let width = WIDTHS
        .iter()
        .copied()
        .find(|w| (span + w - 1) / w <= MAX_BARS)
        .unwrap_or(365 * 86_400);
    width * 1000
}

/// A bar of the chart.
pub(crate) struct Bar {
    /// Left edge.
    pub(crate) x: i64,
    /// Top edge.
    pub(crate) y: i64,
    /// Width.
    pub(crate) width: i64,
    /// Height (at least 1 for a bucket with events, so it shows).
    pub(crate) height: i64,
    /// Its tooltip: count and bucket start.
    pub(crate) label: String,
}

/// The chart, ready to draw.
pub(crate) struct Chart {
    /// The bars, oldest first, one per bucket of the range (empty buckets have no height).
    pub(crate) bars: Vec<Bar>,
    /// The SVG's width in its own units.
    pub(crate) width: i64,
    /// The largest count of a bucket.
    pub(crate) max: u64,
    /// The total.
    pub(crate) total: u64,
    /// The range's start as shown.
    pub(crate) from: String,
    /// Its end as shown.
    pub(crate) to: String,
    /// The bucket's width in words (`hour`, `3 hours`).
    pub(crate) bucket: String,
}

impl Chart {
    /// The chart of `counts` (bucket start, count; oldest first, empty buckets left out, as
    /// `Store::violation_stats` answers) from `start` to `end` in buckets `bucket_ms` wide.
    pub(crate) fn new(
        counts: &[(Timestamp, u64)],
        start: Timestamp,
        end: Timestamp,
        bucket_ms: i64,
    ) -> Chart {
        let bucket_ms = bucket_ms.max(1);
        let first = start.as_millisecond().div_euclid(bucket_ms) * bucket_ms;
        let last = end.as_millisecond().div_euclid(bucket_ms) * bucket_ms;
        let n = ((last - first) / bucket_ms + 1).clamp(1, 10_000);
        let max = counts.iter().map(|(_, c)| *c).max().unwrap_or(0);
        let total = counts.iter().map(|(_, c)| *c).sum();
        let bars = (0..n)
            .map(|i| {
                let at = first + i * bucket_ms;
                let count = counts
                    .iter()
                    .find(|(t, _)| t.as_millisecond() == at)
                    .map_or(0, |(_, c)| *c);
                let height = if max == 0 || count == 0 {
                    0
                } else {
                    let scaled = u128::from(count) * 96 / u128::from(max);
                    i64::try_from(scaled).unwrap_or(96).max(1)
                };
                let from = Timestamp::from_millisecond(at).map_or_else(|_| String::new(), when);
                Bar {
                    x: i * SLOT + 1,
                    y: HEIGHT - height,
                    width: SLOT - 2,
                    height,
                    label: format!(
                        "{count} {} from {from}",
                        if count == 1 { "event" } else { "events" }
                    ),
                }
            })
            .collect();
        Chart {
            bars,
            width: n * SLOT,
            max,
            total,
            from: when(start),
            to: when(end),
            bucket: words(bucket_ms / 1000),
        }
    }
}

/// A bucket width in words.
fn words(seconds: i64) -> String {
    let (n, unit) = match seconds {
        s if s % 86_400 == 0 => (s / 86_400, "day"),
        s if s % 3600 == 0 => (s / 3600, "hour"),
        s => (s / 60, "minute"),
    };
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn buckets_fit_the_range() {
        let end = at("2026-12-06T12:00:00Z");
        assert_eq!(bucket_ms(at("2026-12-06T11:00:00Z"), end), 60_000);
        assert_eq!(bucket_ms(at("2026-12-05T12:00:00Z"), end), 1_800_000);
        assert_eq!(bucket_ms(at("2026-11-29T12:00:00Z"), end), 3 * 3_600_000);
        assert_eq!(words(3 * 3600), "3 hours");
    }

    #[test]
    fn bars_cover_the_range_scaled_to_the_largest() {
        let start = at("2026-12-06T10:00:00Z");
        let end = at("2026-12-06T12:30:00Z");
        let counts = [
            (at("2026-12-06T10:00:00Z"), 2),
            (at("2026-12-06T12:00:00Z"), 4),
        ];
        let chart = Chart::new(&counts, start, end, 3_600_000);
        let heights: Vec<i64> = chart.bars.iter().map(|b| b.height).collect();
        assert_eq!(heights, [48, 0, 96]);
        assert_eq!((chart.total, chart.max, chart.width), (6, 4, 30));
        assert_eq!(chart.bars[2].label, "4 events from 2026-12-06 12:00 UTC");
    }
}
