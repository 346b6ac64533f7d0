//! The two `format` values the OCPP schemas use: `date-time` (RFC 3339 §5.6) and `uri`
//! (RFC 3986 §3, checked loosely).

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`. `T` and `Z` may be lower
/// case (RFC 3339 §5.6 note); a leap second (`:60`) is accepted at any time of day, as most
/// validators do, since the offset makes the UTC minute hard to tell.
pub(crate) fn is_date_time(s: &str) -> bool {
    let b = s.as_bytes();
    let (Some(date), Some(sep), Some(time)) = (b.get(..10), b.get(10), b.get(11..)) else {
        return false;
    };
    matches!(sep, b'T' | b't') && is_full_date(date) && is_full_time(time)
}

fn digits(b: &[u8], start: usize, len: usize) -> Option<u32> {
    let part = b.get(start..start + len)?;
    part.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_full_date(b: &[u8]) -> bool {
    let (Some(year), Some(month), Some(day)) = (digits(b, 0, 4), digits(b, 5, 2), digits(b, 8, 2))
    else {
        return false;
    };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn is_full_time(b: &[u8]) -> bool {
    let (Some(hour), Some(minute), Some(second)) =
        (digits(b, 0, 2), digits(b, 3, 2), digits(b, 6, 2))
    else {
        return false;
    };
    if b.get(2) != Some(&b':') || b.get(5) != Some(&b':') || hour > 23 || minute > 59 || second > 60
    {
        return false;
    }
    let mut rest = b.get(8..).unwrap_or_default();
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = frac.get(n..).unwrap_or_default();
    }
    match rest {
        b"Z" | b"z" => true,
        [b'+' | b'-', offset @ ..] if offset.len() == 5 => {
            matches!((digits(offset, 0, 2), offset.get(2), digits(offset, 3, 2)),
                (Some(h), Some(b':'), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

/// RFC 3986 URI (absolute, with scheme): `scheme ":" rest`, where the scheme is a letter
/// followed by letters, digits, `+`, `-` or `.`, and the rest holds no whitespace, control
/// characters or characters RFC 3986 never allows unescaped (`"<>\^`{|}`). Percent escapes
/// must be complete. This is looser than a full RFC 3986 parse (it does not check the
/// authority's structure); the OCPP fields using it (firmware and log locations) are only
/// passed on, never dereferenced here.
pub(crate) fn is_uri(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return false;
    }
    let bytes = rest.as_bytes();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
                continue;
            }
            0..=0x20 | 0x7f..=0xff => return false,
            b'"' | b'<' | b'>' | b'\\' | b'^' | b'`' | b'{' | b'|' | b'}' => return false,
            _ => {}
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times() {
        for ok in [
            "2024-01-31T23:59:59Z",
            "2024-02-29T00:00:00.123456+01:00",
            "2023-12-31t10:00:00z",
            "2023-06-30T23:59:60-05:30",
        ] {
            assert!(is_date_time(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-01-31",
            "2024-01-31T23:59:59",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "2024-01-01 00:00:00Z",
            "２０２４-01-01T00:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(is_uri("https://example.com/fw.bin?x=1%20"));
        assert!(is_uri("ftp://user@host:21/a"));
        assert!(is_uri("urn:isbn:123"));
        assert!(!is_uri("example.com/fw.bin"));
        assert!(!is_uri("http://a b"));
        assert!(!is_uri("1http://a"));
        assert!(!is_uri("http://a/%zz"));
    }
}
