//! Text for messages: untrusted values bounded and escaped, durations written as Go writes
//! them (as Teleport's tokens do).

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

/// A duration as Go writes it for whole seconds: `7m12s`, `5m`, `1h0m5s` → `1h5s`.
pub(crate) fn go_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut text = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s")] {
        if value > 0 {
            text.push_str(&format!("{value}{unit}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        assert_eq!(go_duration(Duration::from_secs(432)), "7m12s");
        assert_eq!(go_duration(Duration::from_secs(300)), "5m");
        assert_eq!(go_duration(Duration::from_secs(3605)), "1h5s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
    }
}
