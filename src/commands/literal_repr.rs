//! Values as flytekit shows them (`flytekit/interaction/string_literals.py`,
//! `literal_string_repr`): plain JSON, never a debug dump or a byte count. A union shows its
//! value, a msgpack-encoded dataclass or pydantic model its fields, a file, directory or
//! dataframe its URI, a datetime its ISO form, a duration its seconds.

use serde_json::{json, Value};
use union_idl::flyteidl::core;

/// A literal as JSON, following `literal_string_repr`.
pub fn literal_json(l: &core::Literal) -> Value {
    use core::literal::Value as L;
    match &l.value {
        Some(L::Scalar(s)) => scalar_json(s),
        Some(L::Collection(c)) => Value::Array(c.literals.iter().map(literal_json).collect()),
        Some(L::Map(m)) => Value::Object(
            m.literals
                .iter()
                .map(|(k, v)| (k.clone(), literal_json(v)))
                .collect(),
        ),
        Some(L::OffloadedMetadata(o)) => Value::String(format!(
            "offloaded literal at {} ({} bytes)",
            o.uri, o.size_bytes
        )),
        None => Value::Null,
    }
}

/// A literal as text: JSON, compact.
pub fn literal_text(l: &core::Literal) -> String {
    literal_json(l).to_string()
}

fn scalar_json(s: &core::Scalar) -> Value {
    use core::scalar::Value as S;
    match &s.value {
        Some(S::Primitive(p)) => primitive_json(p),
        Some(S::NoneType(_)) | None => Value::Null,
        Some(S::Error(e)) => Value::String(e.message.clone()),
        Some(S::StructuredDataset(d)) => Value::String(d.uri.clone()),
        Some(S::Schema(d)) => Value::String(d.uri.clone()),
        Some(S::Blob(b)) => Value::String(b.uri.clone()),
        Some(S::Binary(b)) if b.tag == "msgpack" => {
            match rmpv::decode::read_value(&mut &b.value[..]) {
                Ok(v) => msgpack_json(&v),
                Err(_) => Value::String(format!(
                    "<{} bytes of msgpack that do not decode>",
                    b.value.len()
                )),
            }
        }
        Some(S::Binary(b)) => {
            use base64::Engine as _;
            Value::String(base64::engine::general_purpose::STANDARD.encode(&b.value))
        }
        Some(S::Generic(st)) => struct_json(st),
        Some(S::Union(u)) => u.value.as_deref().map(literal_json).unwrap_or(Value::Null),
    }
}

fn primitive_json(p: &core::Primitive) -> Value {
    use core::primitive::Value as P;
    match &p.value {
        Some(P::Integer(i)) => json!(i),
        Some(P::FloatValue(f)) => json!(f),
        Some(P::StringValue(s)) => json!(s),
        Some(P::Boolean(b)) => json!(b),
        Some(P::Datetime(t)) => Value::String(iso(t)),
        Some(P::Duration(d)) => json!(d.seconds as f64 + f64::from(d.nanos) / 1e9),
        None => Value::Null,
    }
}

/// `datetime.isoformat()` of a UTC timestamp.
fn iso(t: &prost_types::Timestamp) -> String {
    let secs = t.seconds;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let frac = if t.nanos > 0 {
        format!(".{:06}", t.nanos / 1000)
    } else {
        String::new()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{frac}+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn struct_json(s: &prost_types::Struct) -> Value {
    Value::Object(
        s.fields
            .iter()
            .map(|(k, v)| (k.clone(), proto_value_json(v)))
            .collect(),
    )
}

fn proto_value_json(v: &prost_types::Value) -> Value {
    use prost_types::value::Kind;
    match &v.kind {
        Some(Kind::NullValue(_)) | None => Value::Null,
        Some(Kind::NumberValue(n)) => json!(n),
        Some(Kind::StringValue(s)) => json!(s),
        Some(Kind::BoolValue(b)) => json!(b),
        Some(Kind::StructValue(s)) => struct_json(s),
        Some(Kind::ListValue(l)) => Value::Array(l.values.iter().map(proto_value_json).collect()),
    }
}

fn msgpack_json(v: &rmpv::Value) -> Value {
    use rmpv::Value as M;
    match v {
        M::Nil => Value::Null,
        M::Boolean(b) => json!(b),
        M::Integer(i) => i
            .as_i64()
            .map(|n| json!(n))
            .or_else(|| i.as_u64().map(|n| json!(n)))
            .unwrap_or(Value::Null),
        M::F32(f) => json!(f),
        M::F64(f) => json!(f),
        M::String(s) => json!(s.as_str().unwrap_or_default()),
        M::Binary(b) => {
            use base64::Engine as _;
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
        M::Array(a) => Value::Array(a.iter().map(msgpack_json).collect()),
        M::Map(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let key = match k {
                        M::String(s) => s.as_str().unwrap_or_default().to_string(),
                        other => msgpack_json(other).to_string(),
                    };
                    (key, msgpack_json(v))
                })
                .collect(),
        ),
        M::Ext(_, b) => {
            use base64::Engine as _;
            json!(base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> core::Literal {
        core::Literal {
            value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
                value: Some(core::scalar::Value::Primitive(core::Primitive {
                    value: Some(core::primitive::Value::StringValue(s.into())),
                })),
            }))),
            ..Default::default()
        }
    }

    #[test]
    fn values_show_as_flytekit_shows_them() {
        // Optional[str] = "x": a union around a string shows the string.
        let union = core::Literal {
            value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
                value: Some(core::scalar::Value::Union(Box::new(core::Union {
                    value: Some(Box::new(string("x"))),
                    r#type: None,
                }))),
            }))),
            ..Default::default()
        };
        assert_eq!(literal_text(&union), "\"x\"");
        // A dataclass as flytekit 1.16 sends it: msgpack of {"name": "a", "n": 3}.
        let packed = vec![
            0x82, 0xa4, b'n', b'a', b'm', b'e', 0xa1, b'a', 0xa1, b'n', 0x03,
        ];
        let binary = core::Literal {
            value: Some(core::literal::Value::Scalar(Box::new(core::Scalar {
                value: Some(core::scalar::Value::Binary(core::Binary {
                    value: packed,
                    tag: "msgpack".into(),
                })),
            }))),
            ..Default::default()
        };
        assert_eq!(literal_text(&binary), r#"{"name":"a","n":3}"#);
        let t = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 0,
        };
        assert_eq!(iso(&t), "2023-11-14T22:13:20+00:00");
    }
}
