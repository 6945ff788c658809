//! Text for messages: untrusted values bounded and escaped, and durations written the one way
//! every message writes them.

use core::time::Duration;

/// Untrusted text echoed in a message: at most 64 characters, control characters escaped.
pub(crate) fn bounded_escaped(text: &str) -> String {
    bounded(text).escape_debug().to_string()
}

/// Configuration text echoed in a message: at most 64 characters.
pub(crate) fn bounded(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    if text.chars().count() <= MAX_CHARS {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(MAX_CHARS).collect();
        cut.push('…');
        cut
    }
}

/// A duration exactly as Go's `time.Duration.String()` prints it: `0s`, `1.5s`, `5m0s`,
/// `1h0m0s`, `300ms`, `1.5µs`, `7ns`; hours are the largest unit.
///
/// Teleport's tokens write `aws_iid_ttl` in Go's syntax, so messages about TTLs and ages read
/// like the token that set them (and [`parse_go_duration`](crate::policy::ttl::parse_go_duration)
/// reads every output back).
pub fn short_duration(d: Duration) -> String {
    const NANOS_PER_MICRO: u128 = 1_000;
    const NANOS_PER_MILLI: u128 = 1_000_000;
    const NANOS_PER_SEC: u128 = 1_000_000_000;
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    if nanos < NANOS_PER_MICRO {
        return format!("{nanos}ns");
    }
    if nanos < NANOS_PER_MILLI {
        return format!("{}µs", with_fraction(nanos, 3));
    }
    if nanos < NANOS_PER_SEC {
        return format!("{}ms", with_fraction(nanos, 6));
    }
    let secs = d.as_secs();
    let seconds = with_fraction(
        u128::from(secs % 60) * NANOS_PER_SEC + u128::from(d.subsec_nanos()),
        9,
    );
    match (secs / 3600, secs / 60 % 60) {
        (0, 0) => format!("{seconds}s"),
        (0, minutes) => format!("{minutes}m{seconds}s"),
        (hours, minutes) => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// `value / 10^digits` in decimal, without trailing zeros in the fraction (Go's `fmtFrac`).
fn with_fraction(value: u128, digits: usize) -> String {
    let scale = 10_u128.pow(u32::try_from(digits).unwrap_or(0));
    let (whole, fraction) = (value / scale, value % scale);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:0digits$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each line is Go 1.22's `time.Duration(n).String()` for `n` nanoseconds.
    #[test]
    fn short_duration_prints_what_go_prints() {
        let go = [
            (0, "0s"),
            (1, "1ns"),
            (999, "999ns"),
            (1_000, "1µs"),
            (1_500, "1.5µs"),
            (1_000_000, "1ms"),
            (1_500_000, "1.5ms"),
            (300_000_000, "300ms"),
            (999_999_999, "999.999999ms"),
            (1_000_000_000, "1s"),
            (1_500_000_000, "1.5s"),
            (1_000_000_001, "1.000000001s"),
            (59_000_000_000, "59s"),
            (60_000_000_000, "1m0s"),
            (300_000_000_000, "5m0s"),
            (432_000_000_000, "7m12s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_605_000_000_000, "1h0m5s"),
            (5_400_000_000_000, "1h30m0s"),
            (183_600_000_000_000, "51h0m0s"),
            (90_061_500_000_000, "25h1m1.5s"),
        ];
        for (nanos, printed) in go {
            assert_eq!(
                short_duration(Duration::from_nanos(nanos)),
                printed,
                "{nanos} ns"
            );
        }
    }
}
