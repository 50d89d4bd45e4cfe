//! How a `--split` file is cut into segments: evenly at the start, and
//! again when a file is resumed with more connections than it has
//! unfinished segments.

use crate::split::state::Span;

/// The smallest segment: a file is split into at most `length / MIN_SEGMENT`
/// segments (so files under 2 MiB are fetched over one connection).
pub const MIN_SEGMENT: u64 = 1 << 20;

/// `to - from` bytes as at most `split` segments of equal length (the last
/// one takes the remainder), none shorter than [`MIN_SEGMENT`] unless there
/// is only one.
pub fn plan(from: u64, to: u64, split: u64) -> Vec<Span> {
    let len = to - from;
    if len == 0 {
        return Vec::new();
    }
    let count = split.min(len / MIN_SEGMENT).max(1);
    let size = len / count;
    (0..count)
        .map(|i| {
            let start = from + i * size;
            let end = if i + 1 == count { to } else { start + size };
            Span {
                start,
                end,
                done: start,
            }
        })
        .collect()
}

/// `spans` with the missing bytes of the largest unfinished ones halved
/// until `split` of them are unfinished (or none has 2 × [`MIN_SEGMENT`]
/// left): a file resumed with a larger `--split` than it was begun with
/// uses the connections it may.
pub fn spread(mut spans: Vec<Span>, split: u64) -> Vec<Span> {
    loop {
        let open = spans.iter().filter(|s| s.done < s.end).count() as u64;
        let largest = (0..spans.len()).max_by_key(|&i| spans[i].end - spans[i].done);
        let Some(i) = largest else { return spans };
        let Span { start, end, done } = spans[i];
        if open >= split || end - done < 2 * MIN_SEGMENT {
            return spans;
        }
        let middle = done + (end - done) / 2;
        spans[i] = Span {
            start,
            end: middle,
            done,
        };
        let rest = Span {
            start: middle,
            end,
            done: middle,
        };
        spans.insert(i + 1, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_tile_the_range() {
        let mib = MIN_SEGMENT;
        for (from, to, split, count) in [
            (0, 100 * mib, 8, 8),
            (0, 100 * mib + 7, 8, 8),
            (0, 3 * mib, 8, 3),
            (0, mib / 2, 8, 1),
            (5, 5 + 16 * mib, 4, 4),
        ] {
            let spans = plan(from, to, split);
            assert_eq!(spans.len(), count, "{from}..{to} / {split}");
            assert_eq!(spans[0].start, from);
            assert_eq!(spans.last().unwrap().end, to);
            for pair in spans.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
            }
            assert!(spans.iter().all(|s| s.done == s.start && s.end > s.start));
        }
        assert!(plan(7, 7, 8).is_empty());
    }

    #[test]
    fn resumed_segments_are_spread_over_the_connections() {
        let mib = MIN_SEGMENT;
        let span = |start, end, done| Span { start, end, done };
        // Two segments of 8 MiB, the first done, the second half done: its
        // 4 missing MiB become four segments of 1 MiB.
        let spans = vec![span(0, 8 * mib, 8 * mib), span(8 * mib, 16 * mib, 12 * mib)];
        let spread4 = spread(spans.clone(), 4);
        assert_eq!(
            spread4,
            vec![
                span(0, 8 * mib, 8 * mib),
                span(8 * mib, 13 * mib, 12 * mib),
                span(13 * mib, 14 * mib, 13 * mib),
                span(14 * mib, 15 * mib, 14 * mib),
                span(15 * mib, 16 * mib, 15 * mib),
            ]
        );
        assert_eq!(spread(spans.clone(), 1), spans);
        // Nothing left to split: less than 2 MiB missing per segment.
        let small = vec![span(0, 3 * mib, 2 * mib), span(3 * mib, 4 * mib, 3 * mib)];
        assert_eq!(spread(small.clone(), 8), small);
        let done = vec![span(0, 5 * mib, 5 * mib)];
        assert_eq!(spread(done.clone(), 8), done);
    }
}
