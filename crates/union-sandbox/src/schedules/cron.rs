//! The cron dialect FlyteScheduler accepts: `cron.ParseStandard` of robfig/cron v3 (union's fork,
//! which flyteadmin pins), evaluated in UTC.
//!
//! - five fields: minute, hour, day of month, month, day of week; each a comma-separated list of
//!   `*` or `?`, `N`, `N-M`, with an optional `/STEP` (`N/STEP` means `N-max/STEP`); month and
//!   weekday names (`jan`, `mon`, case-insensitive); weekdays 0-6 (Sunday is 0);
//! - day of month and day of week: when either is `*` (or `?`) both must match, otherwise either
//!   may (vixie cron's rule; `*/2` is not a star);
//! - descriptors `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`, and
//!   `@every <duration>` (Go durations: `1h30m`, `90s`; whole seconds, at least one), which counts
//!   from the previous run rather than from the clock's minutes;
//! - a `TZ=`/`CRON_TZ=` prefix: robfig accepts any zone; the sandbox knows only UTC (`UTC`,
//!   `Etc/UTC`) and refuses others.
//!
//! Times are unix seconds, UTC. Calendar arithmetic is Howard Hinnant's civil-date algorithms.

/// A parsed schedule expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CronSpec {
    /// Field bit sets (bit 63: the field was `*`/`?`).
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every`: a constant delay in seconds.
    Every(i64),
}

const STAR: u64 = 1 << 63;

struct Bounds {
    min: u32,
    max: u32,
    names: &'static [(&'static str, u32)],
}

const MINUTES: Bounds = Bounds {
    min: 0,
    max: 59,
    names: &[],
};
const HOURS: Bounds = Bounds {
    min: 0,
    max: 23,
    names: &[],
};
const DOM: Bounds = Bounds {
    min: 1,
    max: 31,
    names: &[],
};
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        ("jan", 1),
        ("feb", 2),
        ("mar", 3),
        ("apr", 4),
        ("may", 5),
        ("jun", 6),
        ("jul", 7),
        ("aug", 8),
        ("sep", 9),
        ("oct", 10),
        ("nov", 11),
        ("dec", 12),
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &[
        ("sun", 0),
        ("mon", 1),
        ("tue", 2),
        ("wed", 3),
        ("thu", 4),
        ("fri", 5),
        ("sat", 6),
    ],
};

fn bits(min: u32, max: u32, step: u32) -> u64 {
    let mut b = 0u64;
    let mut i = min;
    while i <= max {
        b |= 1 << i;
        i += step;
    }
    b
}

fn all(r: &Bounds) -> u64 {
    bits(r.min, r.max, 1) | STAR
}

fn parse_int(s: &str) -> Result<u32, String> {
    let n: i64 = s
        .parse()
        .map_err(|_| format!("failed to parse int from {s}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {s}"));
    }
    u32::try_from(n).map_err(|_| format!("failed to parse int from {s}"))
}

fn parse_int_or_name(s: &str, r: &Bounds) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    match r.names.iter().find(|(n, _)| *n == lower) {
        Some((_, v)) => Ok(*v),
        None => parse_int(s),
    }
}

/// robfig's `getRange`.
fn range(expr: &str, r: &Bounds) -> Result<u64, String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_high.len() == 1;
    let (start, mut end, mut extra);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = r.min;
        end = r.max;
        extra = STAR;
    } else {
        start = parse_int_or_name(low_high[0], r)?;
        end = match low_high.len() {
            1 => start,
            2 => parse_int_or_name(low_high[1], r)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
        extra = 0;
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = parse_int(range_and_step[1])?;
            if single {
                end = r.max;
            }
            if step > 1 {
                extra = 0;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < r.min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            r.min
        ));
    }
    if end > r.max {
        return Err(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            r.max
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(bits(start, end, step) | extra)
}

fn field(f: &str, r: &Bounds) -> Result<u64, String> {
    let mut b = 0;
    for expr in f.split(',').filter(|e| !e.is_empty()) {
        b |= range(expr, r)?;
    }
    Ok(b)
}

/// A Go duration (`time.ParseDuration`) in whole seconds, at least one (robfig's `Every`).
fn go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("failed to parse duration @every {s}: time: invalid duration \"{s}\"");
    let mut rest = s.trim();
    let negative = rest.starts_with('-');
    rest = rest.trim_start_matches(['-', '+']);
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(1);
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        nanos += value * scale;
    }
    if negative {
        return Ok(1);
    }
    Ok(((nanos / 1e9).floor() as i64).max(1))
}

impl CronSpec {
    /// Parse as `cron.ParseStandard` does (errors worded as its are).
    pub fn parse(spec: &str) -> Result<CronSpec, String> {
        if spec.is_empty() {
            return Err("empty spec string".into());
        }
        let mut spec = spec;
        if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
            let (tz, rest) = spec.split_once(' ').unwrap_or((spec, ""));
            let zone = tz.split_once('=').map(|(_, z)| z).unwrap_or_default();
            if !matches!(zone, "UTC" | "Etc/UTC") {
                return Err(format!(
                    "time zone `{zone}`: the sandbox's scheduler evaluates schedules in UTC only (drop the {tz} prefix, or use TZ=UTC)"
                ));
            }
            spec = rest.trim();
        }
        if let Some(descriptor) = spec.strip_prefix('@') {
            let once = 1u64;
            let fields = |minute, hour, dom, month, dow| CronSpec::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            };
            return match descriptor {
                "yearly" | "annually" => Ok(fields(once, once, 1 << 1, 1 << 1, all(&DOW))),
                "monthly" => Ok(fields(once, once, 1 << 1, all(&MONTHS), all(&DOW))),
                "weekly" => Ok(fields(once, once, all(&DOM), all(&MONTHS), once)),
                "daily" | "midnight" => Ok(fields(once, once, all(&DOM), all(&MONTHS), all(&DOW))),
                "hourly" => Ok(fields(
                    once,
                    all(&HOURS),
                    all(&DOM),
                    all(&MONTHS),
                    all(&DOW),
                )),
                _ => match descriptor.strip_prefix("every ") {
                    Some(d) => Ok(CronSpec::Every(go_duration(d)?)),
                    None => Err(format!("unrecognized descriptor: {spec}")),
                },
            };
        }
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            ));
        }
        Ok(CronSpec::Fields {
            minute: field(fields[0], &MINUTES)?,
            hour: field(fields[1], &HOURS)?,
            dom: field(fields[2], &DOM)?,
            month: field(fields[3], &MONTHS)?,
            dow: field(fields[4], &DOW)?,
        })
    }

    /// The first activation strictly after `after` (unix seconds), or None when there is none
    /// within five years (robfig's limit: `0 0 30 2 *` never fires).
    pub fn next(&self, after: i64) -> Option<i64> {
        let (minute, hour, dom, month, dow) = match self {
            CronSpec::Every(delay) => return Some(after + delay),
            CronSpec::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (*minute, *hour, *dom, *month, *dow),
        };
        let day_matches = |days: i64, d: u32| {
            let dom_match = dom & (1 << d) != 0;
            let weekday = (days + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            let dow_match = dow & (1 << weekday) != 0;
            if dom & STAR != 0 || dow & STAR != 0 {
                dom_match && dow_match
            } else {
                dom_match || dow_match
            }
        };
        // The upcoming minute (cron fires at second 0).
        let t = (after.div_euclid(60) + 1) * 60;
        let mut days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (mut h, mut m) = ((secs / 3600) as u32, ((secs % 3600) / 60) as u32);
        let (y0, _, _) = civil_from_days(days);
        loop {
            let (y, mo, d) = civil_from_days(days);
            if y > y0 + 5 {
                return None;
            }
            if month & (1 << mo) == 0 {
                // The first day of the next month.
                let (ny, nm) = if mo == 12 { (y + 1, 1) } else { (y, mo + 1) };
                days = days_from_civil(ny, nm, 1);
                (h, m) = (0, 0);
                continue;
            }
            if !day_matches(days, d) {
                days += 1;
                (h, m) = (0, 0);
                continue;
            }
            match (h..24).find(|x| hour & (1 << x) != 0) {
                None => {
                    days += 1;
                    (h, m) = (0, 0);
                    continue;
                }
                Some(x) if x != h => (h, m) = (x, 0),
                Some(_) => {}
            }
            match (m..60).find(|x| minute & (1 << x) != 0) {
                Some(x) => return Some(days * 86_400 + i64::from(h) * 3600 + i64::from(x) * 60),
                None => {
                    // The next matching hour of this day, from its first minute.
                    m = 0;
                    h += 1;
                    if h == 24 {
                        days += 1;
                        h = 0;
                    }
                }
            }
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, for messages and tests.
pub fn rfc3339(t: i64) -> String {
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        s / 3600,
        (s % 3600) / 60,
        s % 60
    )
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ` (also accepts a bare integer of unix seconds).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let (y, mo, day) = (
        d.next()?.parse::<i64>().ok()?,
        d.next()?.parse::<u32>().ok()?,
        d.next()?.parse::<u32>().ok()?,
    );
    let mut t = time.splitn(3, ':');
    let (h, mi, sec) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, mo, day) * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        parse_rfc3339(s).unwrap()
    }

    fn next(spec: &str, after: &str) -> String {
        rfc3339(CronSpec::parse(spec).unwrap().next(t(after)).unwrap())
    }

    #[test]
    fn civil_dates_round_trip() {
        for days in [-800_000, -1, 0, 1, 59, 60, 11_016, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(t("2024-02-29T12:34:56Z"), 1_709_210_096);
        assert_eq!(rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn every_minute_fires_at_the_next_minute_strictly_after() {
        assert_eq!(
            next("* * * * *", "2024-05-01T10:00:00Z"),
            "2024-05-01T10:01:00Z"
        );
        assert_eq!(
            next("* * * * *", "2024-05-01T10:00:59Z"),
            "2024-05-01T10:01:00Z"
        );
        assert_eq!(
            next("*/1 * * * *", "2024-12-31T23:59:30Z"),
            "2025-01-01T00:00:00Z"
        );
    }

    #[test]
    fn fields_ranges_steps_lists_and_names() {
        assert_eq!(
            next("*/15 * * * *", "2024-05-01T10:16:00Z"),
            "2024-05-01T10:30:00Z"
        );
        assert_eq!(
            next("5/20 * * * *", "2024-05-01T10:26:00Z"),
            "2024-05-01T10:45:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2024-05-01T13:00:00Z"),
            "2024-05-01T17:00:00Z"
        );
        assert_eq!(
            next("0 9-17/4 * * *", "2024-05-01T17:00:00Z"),
            "2024-05-02T09:00:00Z"
        );
        assert_eq!(
            next("30 2 1,15 * *", "2024-05-02T00:00:00Z"),
            "2024-05-15T02:30:00Z"
        );
        assert_eq!(
            next("0 0 * jan,JUL *", "2024-02-10T00:00:00Z"),
            "2024-07-01T00:00:00Z"
        );
        // 2024-05-01 is a Wednesday.
        assert_eq!(
            next("0 12 * * mon-fri", "2024-05-03T12:00:00Z"),
            "2024-05-06T12:00:00Z"
        );
        assert_eq!(
            next("0 0 * * 0", "2024-05-01T00:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        assert_eq!(
            next("0 0 29 2 *", "2024-03-01T00:00:00Z"),
            "2028-02-29T00:00:00Z"
        );
        assert_eq!(
            next("0 0 31 * *", "2024-04-01T00:00:00Z"),
            "2024-05-31T00:00:00Z"
        );
        assert_eq!(
            next("? ? ? ? ?", "2024-05-01T10:00:00Z"),
            "2024-05-01T10:01:00Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_neither_is_a_star() {
        // The 13th or a Friday: 2024-05-03 is a Friday before the 13th.
        assert_eq!(
            next("0 0 13 * 5", "2024-05-01T00:00:00Z"),
            "2024-05-03T00:00:00Z"
        );
        // With a star, both must match: a Friday the 13th... of any month is not asked here:
        // `*` day of month and Friday means every Friday.
        assert_eq!(
            next("0 0 * * 5", "2024-05-04T00:00:00Z"),
            "2024-05-10T00:00:00Z"
        );
        // `*/1` keeps the star; `*/2` does not (odd days or Mondays).
        assert_eq!(
            next("0 0 */2 * 1", "2024-05-01T00:00:00Z"),
            "2024-05-03T00:00:00Z"
        );
        assert_eq!(
            next("0 0 */1 * 1", "2024-05-01T00:00:00Z"),
            "2024-05-06T00:00:00Z"
        );
    }

    #[test]
    fn descriptors() {
        assert_eq!(
            next("@hourly", "2024-05-01T10:00:00Z"),
            "2024-05-01T11:00:00Z"
        );
        assert_eq!(
            next("@daily", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(
            next("@midnight", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(
            next("@weekly", "2024-05-01T10:00:00Z"),
            "2024-05-05T00:00:00Z"
        );
        assert_eq!(
            next("@monthly", "2024-05-01T10:00:00Z"),
            "2024-06-01T00:00:00Z"
        );
        assert_eq!(
            next("@yearly", "2024-05-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@annually", "2024-05-01T10:00:00Z"),
            "2025-01-01T00:00:00Z"
        );
        assert_eq!(
            next("@every 1h30m", "2024-05-01T10:00:07Z"),
            "2024-05-01T11:30:07Z"
        );
        assert_eq!(
            next("TZ=UTC 0 0 * * *", "2024-05-01T10:00:00Z"),
            "2024-05-02T00:00:00Z"
        );
        assert_eq!(CronSpec::parse("@every 0.5s").unwrap(), CronSpec::Every(1));
    }

    #[test]
    fn rejected_as_flyteadmin_rejects_them() {
        for (spec, error) in [
            ("hourly", "expected exactly 5 fields, found 1"),
            ("* * * *", "expected exactly 5 fields, found 4"),
            ("* * * * * *", "expected exactly 5 fields, found 6"),
            ("60 * * * *", "end of range (60) above maximum (59)"),
            ("* * 0 * *", "beginning of range (0) below minimum (1)"),
            ("* * * * 7", "end of range (7) above maximum (6)"),
            (
                "5-1 * * * *",
                "beginning of range (5) beyond end of range (1)",
            ),
            ("*/0 * * * *", "step of range should be a positive number"),
            ("1-2-3 * * * *", "too many hyphens"),
            ("*/2/3 * * * *", "too many slashes"),
            ("x * * * *", "failed to parse int from x"),
            ("@fortnightly", "unrecognized descriptor"),
            ("@every forever", "failed to parse duration"),
            ("", "empty spec string"),
            ("TZ=Europe/Paris * * * * *", "UTC only"),
        ] {
            let e = CronSpec::parse(spec).unwrap_err();
            assert!(e.contains(error), "{spec:?}: {e}");
        }
    }

    #[test]
    fn impossible_dates_never_fire() {
        let s = CronSpec::parse("0 0 30 2 *").unwrap();
        assert_eq!(s.next(t("2024-01-01T00:00:00Z")), None);
    }
}
