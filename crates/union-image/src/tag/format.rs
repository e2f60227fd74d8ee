//! `tag_format`: Python's `str.format(spec_hash=...)`, for the format strings flytekit can apply.

use crate::pyrepr;

/// Python `format_string.format(spec_hash=value)` for the subset that can succeed with a single
/// keyword: `{spec_hash}`, `{spec_hash!s|r|a}`, `{spec_hash:[[fill]align][0][width][.precision][s]}`,
/// `{{` and `}}`. Anything else is the error Python would raise.
pub fn format_spec_hash(format: &str, value: &str) -> std::result::Result<String, String> {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '{' {
            if chars.get(i + 1) == Some(&'{') {
                out.push('{');
                i += 2;
                continue;
            }
            // Find the matching '}' (format specs may nest one level of braces).
            let mut depth = 1;
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            if j >= chars.len() {
                return Err("expected '}' before end of string".into());
            }
            let field: String = chars[i + 1..j].iter().collect();
            out.push_str(&render_field(&field, value)?);
            i = j + 1;
        } else if c == '}' {
            if chars.get(i + 1) == Some(&'}') {
                out.push('}');
                i += 2;
                continue;
            }
            return Err("Single '}' encountered in format string".into());
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

fn render_field(field: &str, value: &str) -> std::result::Result<String, String> {
    let (name_conv, spec) = match field.find(':') {
        Some(k) => (&field[..k], &field[k + 1..]),
        None => (field, ""),
    };
    let (name, conv) = match name_conv.find('!') {
        Some(k) => (&name_conv[..k], Some(&name_conv[k + 1..])),
        None => (name_conv, None),
    };
    if name.is_empty() || name.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "positional field {{{name}}} has no value: only {{spec_hash}} is provided (Python raises IndexError)"
        ));
    }
    if name != "spec_hash" {
        return Err(format!(
            "unknown field {{{name}}}: only {{spec_hash}} is provided (Python raises KeyError)"
        ));
    }
    let converted = match conv {
        None | Some("s") => value.to_string(),
        Some("r") | Some("a") => pyrepr::str_repr(value),
        Some(other) => return Err(format!("Unknown conversion specifier {other}")),
    };
    if spec.contains('{') {
        return Err("nested replacement fields in the format spec are not supported".into());
    }
    apply_str_spec(spec, &converted)
}

/// Python's format-spec mini-language applied to a `str`.
fn apply_str_spec(spec: &str, s: &str) -> std::result::Result<String, String> {
    let c: Vec<char> = spec.chars().collect();
    let mut i = 0;
    let is_align = |ch: char| matches!(ch, '<' | '>' | '^' | '=');
    let (mut fill, mut align) = (' ', None);
    if c.len() >= 2 && is_align(c[1]) {
        fill = c[0];
        align = Some(c[1]);
        i = 2;
    } else if !c.is_empty() && is_align(c[0]) {
        align = Some(c[0]);
        i = 1;
    }
    if i < c.len() && matches!(c[i], '+' | '-' | ' ') {
        return Err("Sign not allowed in string format specifier".into());
    }
    if i < c.len() && c[i] == 'z' {
        return Err("Negative zero coercion (z) not allowed in format specifier".into());
    }
    if i < c.len() && c[i] == '#' {
        return Err("Alternate form (#) not allowed in string format specifier".into());
    }
    if i < c.len() && c[i] == '0' {
        if align.is_none() {
            fill = '0';
            align = Some('<');
        }
        i += 1;
    }
    let start = i;
    while i < c.len() && c[i].is_ascii_digit() {
        i += 1;
    }
    let width: usize = if i > start {
        c[start..i]
            .iter()
            .collect::<String>()
            .parse()
            .map_err(|_| "Too many decimal digits in format string")?
    } else {
        0
    };
    if i < c.len() && matches!(c[i], ',' | '_') {
        return Err("Cannot specify ',' with 's'.".into());
    }
    let mut precision = None;
    if i < c.len() && c[i] == '.' {
        i += 1;
        let ps = i;
        while i < c.len() && c[i].is_ascii_digit() {
            i += 1;
        }
        if i == ps {
            return Err("Format specifier missing precision".into());
        }
        precision = Some(
            c[ps..i]
                .iter()
                .collect::<String>()
                .parse::<usize>()
                .map_err(|_| "Too many decimal digits in format string")?,
        );
    }
    match &c[i..] {
        [] | ['s'] => {}
        [t] => {
            return Err(format!(
                "Unknown format code '{t}' for object of type 'str'"
            ))
        }
        _ => return Err("Invalid format specifier".into()),
    }
    if align == Some('=') {
        return Err("'=' alignment not allowed in string format specifier".into());
    }
    let mut text: String = s.chars().collect();
    if let Some(p) = precision {
        text = text.chars().take(p).collect();
    }
    let len = text.chars().count();
    if len >= width {
        return Ok(text);
    }
    let pad = width - len;
    let fill_n = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    Ok(match align.unwrap_or('<') {
        '>' => fill_n(pad) + &text,
        '^' => fill_n(pad / 2) + &text + &fill_n(pad - pad / 2),
        _ => text + &fill_n(pad),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_format_mini_language() {
        assert_eq!(format_spec_hash("{spec_hash}-dev", "AB").unwrap(), "AB-dev");
        assert_eq!(
            format_spec_hash("{{x}}{spec_hash!r}", "AB").unwrap(),
            "{x}'AB'"
        );
        assert_eq!(
            format_spec_hash("{spec_hash:*^6.1}", "AB").unwrap(),
            "**A***"
        );
        assert_eq!(format_spec_hash("{spec_hash:05}", "AB").unwrap(), "AB000");
        assert!(format_spec_hash("{}", "AB").is_err());
        assert!(format_spec_hash("{tag}", "AB").is_err());
        assert!(format_spec_hash("x}", "AB").is_err());
        assert!(format_spec_hash("{spec_hash:+}", "AB").is_err());
    }
}
