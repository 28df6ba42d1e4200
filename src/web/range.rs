//! The `Range` request header, reduced to what vidkeep serves (the simulator's result host and the
//! web UI's asset route): one byte range
//! (RFC 9110 §14.1.2). Anything else — several ranges, another unit, bad syntax — is ignored and
//! the full body is sent, which the RFC allows.

/// What a `Range` header asks of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole body with 200.
    Full,
    /// Send bytes `start..=end` with 206.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range lies past the end: answer 416.
    Unsatisfiable,
}

/// Interprets the `Range` header `header` for a body of `len` bytes.
pub fn parse(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(strip_bytes_unit) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.split_once('-') else {
        return RangeRequest::Full;
    };
    match (first.trim(), last.trim()) {
        ("", "") => RangeRequest::Full,
        ("", last) => number(last).map_or(RangeRequest::Full, |n| suffix_of(n, len)),
        (first, "") => number(first).map_or(RangeRequest::Full, |start| from(start, u64::MAX, len)),
        (first, last) => match (number(first), number(last)) {
            (Some(start), Some(end)) if start <= end => from(start, end, len),
            _ => RangeRequest::Full,
        },
    }
}

/// `bytes=a-b` or `bytes=a-` (then `end` is `u64::MAX`).
fn from(start: u64, end: u64, len: u64) -> RangeRequest {
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial { start, end: end.min(len - 1) }
}

/// `bytes=-n`: the last `n` bytes.
fn suffix_of(n: u64, len: u64) -> RangeRequest {
    if n == 0 || len == 0 {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial { start: len - n.min(len), end: len - 1 }
}

/// The range set after `bytes=` (unit case-insensitive, blanks allowed around the set).
fn strip_bytes_unit(header: &str) -> Option<&str> {
    let header = header.trim();
    let unit = header.get(..6)?;
    unit.eq_ignore_ascii_case("bytes=").then(|| header.get(6..)).flatten().map(str::trim)
}

/// A non-empty run of ASCII digits; values past `u64::MAX` saturate (they are valid syntax,
/// just far past any end).
fn number(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse().unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::{Full, Partial, Unsatisfiable};
    use super::*;

    fn p(start: u64, end: u64) -> RangeRequest {
        Partial { start, end }
    }

    #[test]
    fn single_ranges() {
        let cases = [
            ("bytes=0-0", p(0, 0)),
            ("bytes=0-99", p(0, 99)),
            ("bytes=10-19", p(10, 19)),
            ("bytes=10-", p(10, 99)),
            ("bytes=99-", p(99, 99)),
            ("bytes=-1", p(99, 99)),
            ("bytes=-10", p(90, 99)),
            ("bytes=-1000", p(0, 99)),
            ("bytes=50-1000", p(50, 99)),
            ("bytes=0-99999999999999999999999", p(0, 99)),
            ("Bytes=5-6", p(5, 6)),
            (" bytes= 5 - 6 ", p(5, 6)),
        ];
        for (header, want) in cases {
            assert_eq!(parse(Some(header), 100), want, "{header}");
        }
    }

    #[test]
    fn unsatisfiable_ranges() {
        for header in ["bytes=100-", "bytes=100-200", "bytes=-0", "bytes=99999999999999999999999-"] {
            assert_eq!(parse(Some(header), 100), Unsatisfiable, "{header}");
        }
        assert_eq!(parse(Some("bytes=-5"), 0), Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Unsatisfiable);
    }

    #[test]
    fn ignored_headers_give_the_full_body() {
        let cases = [
            None,
            Some(""),
            Some("bytes="),
            Some("bytes=-"),
            Some("bytes=5"),
            Some("bytes=9-5"),
            Some("bytes=0-1,5-6"),
            Some("bytes=0-1, -5"),
            Some("items=0-5"),
            Some("bytes=a-b"),
            Some("bytes=+1-5"),
            Some("bytes=1-+5"),
            Some("bytes=--5"),
            Some("bytes=1-2-3"),
            Some("bytes"),
            Some("bytés=1-2"),
        ];
        for header in cases {
            assert_eq!(parse(header, 100), Full, "{header:?}");
        }
    }
}
