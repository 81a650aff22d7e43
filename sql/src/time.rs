//! Calendar arithmetic on epoch milliseconds (UTC), without a date crate.
//!
//! KDA timestamps have millisecond precision and no time zone, so an `i64` of milliseconds since
//! 1970-01-01 is exact. The civil-date conversions are Howard Hinnant's `days_from_civil` and
//! `civil_from_days` algorithms, valid for the proleptic Gregorian calendar.

pub const MS_SECOND: i64 = 1_000;
pub const MS_MINUTE: i64 = 60 * MS_SECOND;
pub const MS_HOUR: i64 = 60 * MS_MINUTE;
pub const MS_DAY: i64 = 24 * MS_HOUR;

/// The time units of `FLOOR(... TO unit)`, `EXTRACT` and interval literals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

impl Unit {
    pub fn parse(word: &str) -> Option<Unit> {
        Some(match word {
            "YEAR" => Unit::Year,
            "MONTH" => Unit::Month,
            "DAY" => Unit::Day,
            "HOUR" => Unit::Hour,
            "MINUTE" => Unit::Minute,
            "SECOND" => Unit::Second,
            _ => return None,
        })
    }

    /// The fixed length of day-time units; `None` for months and years, whose length varies.
    pub fn fixed_ms(self) -> Option<i64> {
        match self {
            Unit::Day => Some(MS_DAY),
            Unit::Hour => Some(MS_HOUR),
            Unit::Minute => Some(MS_MINUTE),
            Unit::Second => Some(MS_SECOND),
            Unit::Year | Unit::Month => None,
        }
    }
}

pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// The broken-down fields of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub milli: u32,
}

pub fn to_civil(ms: i64) -> Civil {
    let days = ms.div_euclid(MS_DAY);
    let rem = ms.rem_euclid(MS_DAY);
    let (year, month, day) = civil_from_days(days);
    Civil {
        year,
        month,
        day,
        hour: (rem / MS_HOUR) as u32,
        minute: (rem % MS_HOUR / MS_MINUTE) as u32,
        second: (rem % MS_MINUTE / MS_SECOND) as u32,
        milli: (rem % MS_SECOND) as u32,
    }
}

pub fn from_civil(c: &Civil) -> i64 {
    days_from_civil(c.year, c.month, c.day) * MS_DAY
        + c.hour as i64 * MS_HOUR
        + c.minute as i64 * MS_MINUTE
        + c.second as i64 * MS_SECOND
        + c.milli as i64
}

/// `FLOOR(ts TO unit)`.
pub fn floor_to(ms: i64, unit: Unit) -> i64 {
    match unit.fixed_ms() {
        Some(len) => ms.div_euclid(len) * len,
        None => {
            let c = to_civil(ms);
            let month = if unit == Unit::Year { 1 } else { c.month };
            days_from_civil(c.year, month, 1) * MS_DAY
        }
    }
}

/// The first instant after the unit that starts at `floor` (itself a `floor_to` result).
pub fn next_boundary(floor: i64, unit: Unit) -> i64 {
    match unit.fixed_ms() {
        Some(len) => floor + len,
        None => {
            let c = to_civil(floor);
            let (y, m) = match unit {
                Unit::Year => (c.year + 1, 1),
                _ if c.month == 12 => (c.year + 1, 1),
                _ => (c.year, c.month + 1),
            };
            days_from_civil(y, m, 1) * MS_DAY
        }
    }
}

/// `CEIL(ts TO unit)`.
pub fn ceil_to(ms: i64, unit: Unit) -> i64 {
    let f = floor_to(ms, unit);
    if f == ms {
        f
    } else {
        next_boundary(f, unit)
    }
}

/// Formats as KDA prints TIMESTAMP values: `2017-05-01 11:00:20.000`.
pub fn format_timestamp(ms: i64) -> String {
    let c = to_civil(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03}",
        c.year, c.month, c.day, c.hour, c.minute, c.second, c.milli
    )
}

pub fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn format_time(ms: i64) -> String {
    let c = to_civil(ms);
    format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second)
}

/// Parses the timestamp spellings seen in KDA inputs: ISO 8601 with `T` or a space, optional
/// fraction, optional `Z` or numeric offset (converted to UTC), or a bare date.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let part = s.get(from..from + len)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = num(0, 4)? as i64;
    let (month, day) = (num(5, 2)?, num(8, 2)?);
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut c = Civil {
        year,
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    if b.len() == 10 {
        return Some(from_civil(&c));
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    c.hour = num(11, 2)?;
    if b.get(13) != Some(&b':') {
        return None;
    }
    c.minute = num(14, 2)?;
    let mut i = 16;
    if b.get(16) == Some(&b':') {
        c.second = num(17, 2)?;
        i = 19;
    }
    if b.get(i) == Some(&b'.') {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        if end == start {
            return None;
        }
        // Milliseconds are KDA's precision: further digits are dropped, not rounded.
        let frac = &s[start..end.min(start + 3)];
        c.milli = format!("{frac:0<3}").parse().ok()?;
        i = end;
    }
    if c.hour > 23 || c.minute > 59 || c.second > 59 {
        return None;
    }
    let mut ms = from_civil(&c);
    match &s[i..] {
        "" | "Z" => {}
        off if (off.starts_with('+') || off.starts_with('-')) && off.len() >= 3 => {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            let digits: String = off[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 && digits.len() != 2 {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = if digits.len() == 4 {
                digits[2..].parse().ok()?
            } else {
                0
            };
            ms -= sign * (h * MS_HOUR + m * MS_MINUTE);
        }
        _ => return None,
    }
    Some(ms)
}

pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// One piece of a Java `SimpleDateFormat` pattern, which `CHAR_TO_TIMESTAMP` and
/// `TIMESTAMP_TO_CHAR` take.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Field(char, usize),
    Literal(String),
}

fn pattern_pieces(pattern: &str) -> Vec<Piece> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // Quoted literal text; '' is a single quote.
            let mut lit = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        lit.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                lit.push(chars[i]);
                i += 1;
            }
            if lit.is_empty() {
                lit.push('\'');
            }
            out.push(Piece::Literal(lit));
        } else if c.is_ascii_alphabetic() {
            let mut n = 1;
            while chars.get(i + n) == Some(&c) {
                n += 1;
            }
            out.push(Piece::Field(c, n));
            i += n;
        } else {
            out.push(Piece::Literal(c.to_string()));
            i += 1;
        }
    }
    out
}

/// Formats epoch milliseconds with a Java date pattern (`yyyy-MM-dd HH:mm:ss`, `hh`, `a`, `SSS`,
/// `MMM`, `EEE`, quoted literals).
pub fn format_java(ms: i64, pattern: &str) -> String {
    let c = to_civil(ms);
    let mut out = String::new();
    for piece in pattern_pieces(pattern) {
        match piece {
            Piece::Literal(s) => out.push_str(&s),
            Piece::Field(f, n) => {
                let pad = |v: i64| format!("{v:0n$}");
                match f {
                    'y' if n == 2 => out.push_str(&format!("{:02}", c.year.rem_euclid(100))),
                    'y' => out.push_str(&pad(c.year)),
                    'M' if n >= 4 => out.push_str(full_month(c.month)),
                    'M' if n == 3 => out.push_str(MONTHS[c.month as usize - 1]),
                    'M' => out.push_str(&pad(c.month as i64)),
                    'd' => out.push_str(&pad(c.day as i64)),
                    'H' => out.push_str(&pad(c.hour as i64)),
                    'h' => out.push_str(&pad(((c.hour + 11) % 12 + 1) as i64)),
                    'm' => out.push_str(&pad(c.minute as i64)),
                    's' => out.push_str(&pad(c.second as i64)),
                    'S' => {
                        let digits = format!("{:03}", c.milli);
                        let mut frac: String = digits.chars().take(n).collect();
                        while frac.len() < n {
                            frac.push('0');
                        }
                        out.push_str(&frac);
                    }
                    'a' => out.push_str(if c.hour < 12 { "AM" } else { "PM" }),
                    'E' => {
                        let days = ms.div_euclid(MS_DAY);
                        // 1970-01-01 was a Thursday.
                        let names = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
                        out.push_str(names[days.rem_euclid(7) as usize]);
                    }
                    other => out.push_str(&other.to_string().repeat(n)),
                }
            }
        }
    }
    out
}

fn full_month(m: u32) -> &'static str {
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ][m as usize - 1]
}

/// Parses text with a Java date pattern. Fields that the pattern lacks default to 1970-01-01
/// 00:00:00.000, as `SimpleDateFormat` does.
pub fn parse_java(text: &str, pattern: &str) -> Option<i64> {
    let mut c = Civil {
        year: 1970,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
        milli: 0,
    };
    let t: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut pm: Option<bool> = None;
    let mut hour12: Option<u32> = None;
    let pieces = pattern_pieces(pattern);
    for (k, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Literal(s) => {
                for ch in s.chars() {
                    if t.get(i) != Some(&ch) {
                        return None;
                    }
                    i += 1;
                }
            }
            Piece::Field(f, n) => {
                if *f == 'a' {
                    let word: String = t.get(i..i + 2)?.iter().collect();
                    pm = Some(match word.to_uppercase().as_str() {
                        "AM" => false,
                        "PM" => true,
                        _ => return None,
                    });
                    i += 2;
                    continue;
                }
                if *f == 'M' && *n == 3 {
                    let word: String = t.get(i..i + 3)?.iter().collect();
                    c.month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(&word))? as u32 + 1;
                    i += 3;
                    continue;
                }
                // A numeric field followed directly by another field has a fixed width; otherwise
                // it takes every digit up to the next non-digit.
                let adjacent = matches!(pieces.get(k + 1), Some(Piece::Field(..)));
                let start = i;
                while i < t.len() && t[i].is_ascii_digit() && (!adjacent || i - start < *n) {
                    i += 1;
                }
                if i == start {
                    return None;
                }
                let digits: String = t[start..i].iter().collect();
                let v: i64 = digits.parse().ok()?;
                match f {
                    'y' if *n == 2 => c.year = 2000 + v,
                    'y' => c.year = v,
                    'M' => c.month = v as u32,
                    'd' => c.day = v as u32,
                    'H' => c.hour = v as u32,
                    'h' => hour12 = Some(v as u32),
                    'm' => c.minute = v as u32,
                    's' => c.second = v as u32,
                    'S' => {
                        let frac = format!("{:0<3}", &digits[..digits.len().min(3)]);
                        c.milli = frac.parse().ok()?;
                    }
                    _ => return None,
                }
            }
        }
    }
    if i != t.len() {
        return None;
    }
    if let Some(h) = hour12 {
        c.hour = (h % 12) + if pm == Some(true) { 12 } else { 0 };
    }
    if !(1..=12).contains(&c.month)
        || c.day == 0
        || c.day > days_in_month(c.year, c.month)
        || c.hour > 23
        || c.minute > 59
        || c.second > 59
    {
        return None;
    }
    Some(from_civil(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_conversions_round_trip_across_leap_years() {
        for days in [-800_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
    }

    #[test]
    fn iso_timestamps_parse_with_t_or_space_and_offsets() {
        let base = parse_timestamp("2017-05-01 11:00:20").unwrap();
        assert_eq!(parse_timestamp("2017-05-01T11:00:20Z"), Some(base));
        assert_eq!(parse_timestamp("2017-05-01T13:00:20+02:00"), Some(base));
        assert_eq!(parse_timestamp("2017-05-01T11:00:20.5"), Some(base + 500));
        assert_eq!(format_timestamp(base), "2017-05-01 11:00:20.000");
        assert_eq!(parse_timestamp("2017-02-30 00:00:00"), None);
    }

    #[test]
    fn floor_and_next_boundary_handle_months_of_different_lengths() {
        let t = parse_timestamp("2016-02-29 23:59:59.999").unwrap();
        let month = floor_to(t, Unit::Month);
        assert_eq!(format_timestamp(month), "2016-02-01 00:00:00.000");
        assert_eq!(
            format_timestamp(next_boundary(month, Unit::Month)),
            "2016-03-01 00:00:00.000"
        );
        assert_eq!(
            format_timestamp(floor_to(t, Unit::Minute)),
            "2016-02-29 23:59:00.000"
        );
    }

    #[test]
    fn java_patterns_format_and_parse_symmetrically() {
        let t = parse_timestamp("2017-05-01 15:04:05.123").unwrap();
        assert_eq!(
            format_java(t, "yyyy-MM-dd hh:mm:ss a"),
            "2017-05-01 03:04:05 PM"
        );
        assert_eq!(
            format_java(t, "dd/MMM/yyyy:HH:mm:ss"),
            "01/May/2017:15:04:05"
        );
        assert_eq!(
            parse_java("2017-05-01 03:04:05 PM", "yyyy-MM-dd hh:mm:ss a"),
            Some(t - 123)
        );
        assert_eq!(
            parse_java("20170501150405", "yyyyMMddHHmmss"),
            Some(t - 123)
        );
        assert_eq!(parse_java("2017-05-01", "yyyy-MM-dd HH"), None);
    }
}
