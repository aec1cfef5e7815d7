//! What a CI system adds around a tool's own output, taken off before the rules see it: ANSI
//! escape sequences (colours, cursor moves, hyperlinks), CRLF and lone CR line ends, and the
//! timestamp a log collector puts in front of every line (GitHub Actions, the Jenkins
//! timestamper, GitLab's `<time> <stream>` prefix, Tekton and Kubernetes). After cleaning, a
//! rule's `(?m)^` sees the tool's line start.

use std::borrow::Cow;

/// The excerpt as the tool printed it: unchanged (borrowed) when there is nothing to take off,
/// which is the common case.
pub fn clean(log: &str) -> Cow<'_, str> {
    let bytes = log.as_bytes();
    let decorated = bytes.iter().any(|b| matches!(b, 0x1b | b'\r'))
        || lines(log).any(|line| timestamp_len(line.as_bytes()) > 0);
    if !decorated {
        return Cow::Borrowed(log);
    }
    let plain = strip_escapes(log);
    let mut out = String::with_capacity(plain.len());
    for (i, line) in lines(&plain).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&line[timestamp_len(line.as_bytes())..]);
    }
    Cow::Owned(out)
}

/// Lines split at LF, CRLF or a lone CR (a progress bar redrawing its line).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    text.split('\n').flat_map(|l| l.split('\r'))
}

/// `text` without ANSI escape sequences: CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or
/// `ESC ] … ESC \`, the hyperlinks some tools print), and two-byte escapes. CR LF becomes LF.
fn strip_escapes(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1b => i = escape_end(b, i),
            b'\r' if b.get(i + 1) == Some(&b'\n') => i += 1,
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    // Only whole ASCII sequences were removed, so the rest is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The index just past the escape sequence starting at `b[start] == ESC`.
fn escape_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    match b.get(i) {
        Some(b'[') => {
            i += 1;
            // Parameter and intermediate bytes, then one final byte.
            while i < b.len() && (0x20..=0x3f).contains(&b[i]) {
                i += 1;
            }
            if i < b.len() && (0x40..=0x7e).contains(&b[i]) {
                i += 1;
            }
            i
        }
        Some(b']') => {
            i += 1;
            while i < b.len() {
                match b[i] {
                    0x07 => return i + 1,
                    0x1b if b.get(i + 1) == Some(&b'\\') => return i + 2,
                    b'\n' => return i,
                    _ => i += 1,
                }
            }
            i
        }
        Some(c) if c.is_ascii() => i + 1,
        _ => i,
    }
}

/// The length of a collector's timestamp prefix at the start of `line`, with the space after
/// it; 0 when there is none. Recognised:
/// - `2026-11-01T10:00:00.1234567Z ` (GitHub Actions, Tekton, `kubectl logs --timestamps`,
///   with any fraction, `Z` or an offset, optionally in brackets: the Jenkins timestamper);
/// - the same followed by GitLab's stream marker, `00O `, `01E+ `;
/// - `[10:00:00] ` and `10:00:00.123 ` (a clock time, bracketed or followed by a space).
fn timestamp_len(line: &[u8]) -> usize {
    let bracket = usize::from(line.first() == Some(&b'['));
    let mut i = bracket;
    if let Some(n) = date_time(&line[i..]) {
        i += n;
    } else if let Some(n) = clock(&line[i..]) {
        i += n;
        // A bare clock time counts only in brackets or with a space after it and a
        // fraction, so that `12:30:01 error` in a tool's own output is left alone.
        if bracket == 0 && !line[bracket..i].contains(&b'.') {
            return 0;
        }
    } else {
        return 0;
    }
    if bracket == 1 {
        if line.get(i) != Some(&b']') {
            return 0;
        }
        i += 1;
    }
    if line.get(i) != Some(&b' ') {
        return 0;
    }
    i += 1;
    // GitLab: two hex digits, O (stdout) or E (stderr), an optional `+` (line continues).
    if let [a, c, s, rest @ ..] = &line[i..] {
        if a.is_ascii_hexdigit() && c.is_ascii_hexdigit() && matches!(s, b'O' | b'E') {
            let plus = usize::from(rest.first() == Some(&b'+'));
            if rest.get(plus) == Some(&b' ') {
                i += 3 + plus + 1;
            }
        }
    }
    i
}

/// `YYYY-MM-DDTHH:MM:SS[.fff…][Z|±HH:MM]`: its length, if `b` starts with one.
fn date_time(b: &[u8]) -> Option<usize> {
    let digits = |from: usize, n: usize| {
        b.get(from..from + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let ok = digits(0, 4)
        && b.get(4) == Some(&b'-')
        && digits(5, 2)
        && b.get(7) == Some(&b'-')
        && digits(8, 2)
        && matches!(b.get(10), Some(b'T' | b' '));
    if !ok {
        return None;
    }
    let mut i = 11 + clock(&b[11..])?;
    match b.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-') if digits(i + 1, 2) => {
            i += 3;
            if b.get(i) == Some(&b':') {
                i += 1;
            }
            if digits(i, 2) {
                i += 2;
            }
        }
        _ => {}
    }
    Some(i)
}

/// `HH:MM:SS[.fff…]` (a comma also separates the fraction): its length, if `b` starts with one.
fn clock(b: &[u8]) -> Option<usize> {
    let two = |at: usize| {
        b.get(at..at + 2)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    if !(two(0) && b.get(2) == Some(&b':') && two(3) && b.get(5) == Some(&b':') && two(6)) {
        return None;
    }
    let mut i = 8;
    if matches!(b.get(i), Some(b'.' | b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::clean;

    #[test]
    fn a_plain_excerpt_is_borrowed_unchanged() {
        let log = "src/cart.ts(14,22): error TS1005: ',' expected.\nDone";
        assert!(matches!(clean(log), std::borrow::Cow::Borrowed(l) if l == log));
        // A tool's own clock time with no fraction is its text, not a collector's prefix.
        assert_eq!(clean("12:30:01 error x"), "12:30:01 error x");
    }

    #[test]
    fn colours_hyperlinks_and_line_ends_go() {
        assert_eq!(
            clean("\x1b[1m\x1b[31merror\x1b[0m: expected `;`\r\n  --> src/lib.rs:2:5\r\n"),
            "error: expected `;`\n  --> src/lib.rs:2:5\n"
        );
        assert_eq!(
            clean("see \x1b]8;;https://x.test/a\x07rule\x1b]8;;\x1b\\ here"),
            "see rule here"
        );
        assert_eq!(clean("50%\r100%\ndone"), "50%\n100%\ndone");
    }

    #[test]
    fn collector_timestamps_go_from_every_line() {
        assert_eq!(
            clean("2026-11-01T10:00:01.1234567Z ##[error]Process completed with exit code 1.\n2026-11-01T10:00:01.2Z next"),
            "##[error]Process completed with exit code 1.\nnext"
        );
        assert_eq!(
            clean("[2026-11-01T10:00:01.123Z] ERROR: x\n[2026-11-01T10:00:02.000Z] y"),
            "ERROR: x\ny"
        );
        assert_eq!(
            clean("2026-11-01T10:00:01.123456Z 00O $ make\n2026-11-01T10:00:01.2Z 01E+ error: y"),
            "$ make\nerror: y"
        );
        assert_eq!(
            clean("[10:00:01] error: a\n10:00:02.345 error: b"),
            "error: a\nerror: b"
        );
        assert_eq!(
            clean("2026-11-01 10:00:01+02:00 x"),
            "x",
            "a space-separated date-time with an offset"
        );
    }

    #[test]
    fn cut_off_sequences_and_prefixes_are_handled() {
        for text in [
            "\x1b",
            "\x1b[",
            "\x1b]8;;",
            "[2026-11-01T10:00",
            "\r",
            "é\x1b[3é",
            "[10:00:00",
        ] {
            let cleaned = clean(text);
            assert!(!cleaned.contains(['\x1b', '\r']), "{text:?} → {cleaned:?}");
        }
    }

    proptest::proptest! {
        /// Any text, however cut, comes out as text with no escape character and no CR.
        #[test]
        fn any_text_comes_out_without_escapes_or_carriage_returns(text in r"(\PC|\x1b|\r|\[|[0-9:TZ. -]){0,80}") {
            let cleaned = clean(&text);
            proptest::prop_assert!(!cleaned.contains(['\x1b', '\r']));
        }
    }
}
