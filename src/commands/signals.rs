//! `union get signals`, `union approve`, `union reject`, `union signal`: the gate nodes of an
//! execution, through flyteadmin's SignalService (what FlyteRemote's `list_signals`, `approve`,
//! `reject` and `set_signal` call).

use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::Result;

use super::literal_repr::literal_text;
use crate::cli::{GetExecutionArgs, SetSignalArgs, SignalArgs};
use crate::commands::common::{runtime, settings};
use crate::diagnostics::CliError;
use union_client::admin::{AdminClient, AdminError};
use union_client::config::Settings;
use union_idl::flyteidl::core::{
    self, literal, literal_type, primitive, scalar, Literal, LiteralType, SimpleType,
};

fn execution_id(s: &Settings, name: &str) -> core::WorkflowExecutionIdentifier {
    core::WorkflowExecutionIdentifier {
        project: s.project.clone(),
        domain: s.domain.clone(),
        name: name.to_string(),
        ..Default::default()
    }
}

/// A Flyte type as flytekit users write it.
fn type_text(t: Option<&LiteralType>) -> String {
    use literal_type::Type as T;
    match t.and_then(|t| t.r#type.as_ref()) {
        Some(T::Simple(s)) => match SimpleType::try_from(*s) {
            Ok(SimpleType::Integer) => "int".into(),
            Ok(SimpleType::Float) => "float".into(),
            Ok(SimpleType::String) => "str".into(),
            Ok(SimpleType::Boolean) => "bool".into(),
            Ok(SimpleType::Datetime) => "datetime".into(),
            Ok(SimpleType::Duration) => "timedelta".into(),
            Ok(other) => other.as_str_name().to_ascii_lowercase(),
            Err(_) => "?".into(),
        },
        Some(T::CollectionType(item)) => format!("List[{}]", type_text(Some(item))),
        Some(T::MapValueType(item)) => format!("Dict[str, {}]", type_text(Some(item))),
        Some(T::UnionType(u)) => format!(
            "Union[{}]",
            u.variants
                .iter()
                .map(|v| type_text(Some(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Some(_) => "value".into(),
        None => "?".into(),
    }
}

fn scalar_literal(v: scalar::Value) -> Literal {
    Literal {
        value: Some(literal::Value::Scalar(Box::new(core::Scalar {
            value: Some(v),
        }))),
        ..Default::default()
    }
}

fn primitive_literal(p: primitive::Value) -> Literal {
    scalar_literal(scalar::Value::Primitive(core::Primitive { value: Some(p) }))
}

/// `value` (JSON) as a literal of type `t`, or why not.
fn json_to_literal(value: &serde_json::Value, t: &LiteralType) -> Result<Literal, String> {
    use literal_type::Type as T;
    use serde_json::Value as J;
    let wanted = || type_text(Some(t));
    match (t.r#type.as_ref(), value) {
        (Some(T::Simple(s)), v) => {
            let simple = SimpleType::try_from(*s).unwrap_or(SimpleType::None);
            let p = match (simple, v) {
                (SimpleType::Integer, J::Number(n)) if n.as_i64().is_some() => {
                    primitive::Value::Integer(n.as_i64().unwrap_or_default())
                }
                (SimpleType::Float, J::Number(n)) => {
                    primitive::Value::FloatValue(n.as_f64().unwrap_or_default())
                }
                (SimpleType::String, J::String(s)) => primitive::Value::StringValue(s.clone()),
                (SimpleType::Boolean, J::Bool(b)) => primitive::Value::Boolean(*b),
                (SimpleType::None, J::Null) => {
                    return Ok(scalar_literal(scalar::Value::NoneType(core::Void {})))
                }
                _ => return Err(format!("`{v}` is not a {}", wanted())),
            };
            Ok(primitive_literal(p))
        }
        (Some(T::CollectionType(item)), J::Array(items)) => Ok(Literal {
            value: Some(literal::Value::Collection(core::LiteralCollection {
                literals: items
                    .iter()
                    .map(|i| json_to_literal(i, item))
                    .collect::<Result<_, _>>()?,
            })),
            ..Default::default()
        }),
        (Some(T::MapValueType(item)), J::Object(entries)) => Ok(Literal {
            value: Some(literal::Value::Map(core::LiteralMap {
                literals: entries
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), json_to_literal(v, item)?)))
                    .collect::<Result<_, String>>()?,
            })),
            ..Default::default()
        }),
        (Some(T::UnionType(u)), v) => u
            .variants
            .iter()
            .find_map(|variant| {
                json_to_literal(v, variant).ok().map(|inner| {
                    scalar_literal(scalar::Value::Union(Box::new(core::Union {
                        value: Some(Box::new(inner)),
                        r#type: Some(variant.clone()),
                    })))
                })
            })
            .ok_or_else(|| format!("`{v}` is none of {}", wanted())),
        _ => Err(format!(
            "a value of type {} cannot be given on the command line; set it with FlyteRemote's `set_signal`",
            wanted()
        )),
    }
}

/// The command-line text as a literal of type `t`: numbers, true/false and JSON as JSON, anything
/// else (for strings) as it is.
fn parse_value(text: &str, t: &LiteralType) -> Result<Literal, String> {
    let is_string = matches!(
        t.r#type,
        Some(literal_type::Type::Simple(s)) if s == SimpleType::String as i32
    );
    if is_string {
        return Ok(primitive_literal(primitive::Value::StringValue(
            text.to_string(),
        )));
    }
    let json: serde_json::Value = serde_json::from_str(text.trim())
        .or_else(|_| match text.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" => Ok(serde_json::Value::Bool(true)),
            "false" | "no" => Ok(serde_json::Value::Bool(false)),
            _ => Err(()),
        })
        .map_err(|_| format!("`{text}` is not a {}", type_text(Some(t))))?;
    json_to_literal(&json, t)
}

fn not_found(e: AdminError, execution: &str, signal: &str) -> anyhow::Error {
    if let AdminError::Rpc {
        code: tonic::Code::NotFound,
        ..
    } = e
    {
        return CliError::new(format!(
            "execution `{execution}` has no signal `{signal}` waiting"
        ))
        .hint(format!(
            "see what it waits for with `union get signals {execution}` (a gate's signal exists once the gate node runs)"
        ))
        .into();
    }
    e.into()
}

/// `union get signals EXECUTION`.
pub fn list(a: GetExecutionArgs) -> Result<ExitCode> {
    let s = settings(&a.backend)?;
    let id = execution_id(&s, &a.name);
    let signals = runtime()?.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        c.list_signals(&id).await.map_err(anyhow::Error::from)
    })?;
    let mut text = String::new();
    let _ = writeln!(text, "{:<24} {:<16} VALUE", "SIGNAL", "TYPE");
    for sig in signals {
        let name = sig.id.map(|i| i.signal_id).unwrap_or_default();
        let value = sig
            .value
            .as_ref()
            .map(literal_text)
            .unwrap_or_else(|| "(waiting)".into());
        let _ = writeln!(
            text,
            "{name:<24} {:<16} {value}",
            type_text(sig.r#type.as_ref())
        );
    }
    crate::process::write_data(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `union approve` (true) and `union reject` (false).
pub fn decide(a: SignalArgs, approve: bool) -> Result<ExitCode> {
    let s = settings(&a.backend)?;
    let id = execution_id(&s, &a.execution);
    runtime()?.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        c.set_signal(
            &id,
            &a.signal,
            primitive_literal(primitive::Value::Boolean(approve)),
        )
        .await
        .map_err(|e| not_found(e, &a.execution, &a.signal))
    })?;
    let verb = if approve { "Approved" } else { "Rejected" };
    crate::process::write_data(&format!("{verb} {} of {}\n", a.signal, a.execution))?;
    Ok(ExitCode::SUCCESS)
}

/// `union signal EXECUTION SIGNAL VALUE`.
pub fn set(a: SetSignalArgs) -> Result<ExitCode> {
    let s = settings(&a.backend)?;
    let id = execution_id(&s, &a.execution);
    runtime()?.block_on(async {
        let c = AdminClient::connect(&s, crate::process::login_notice()).await?;
        let signals = c.list_signals(&id).await?;
        let signal = signals
            .iter()
            .find(|x| x.id.as_ref().is_some_and(|i| i.signal_id == a.signal))
            .ok_or_else(|| {
                CliError::new(format!(
                    "execution `{}` has no signal `{}` waiting",
                    a.execution, a.signal
                ))
                .hint(format!(
                    "see what it waits for with `union get signals {}` (a gate's signal exists once the gate node runs)",
                    a.execution
                ))
            })?;
        let t = signal.r#type.clone().unwrap_or_default();
        let value = parse_value(&a.value, &t).map_err(|e| {
            CliError::usage(format!("signal `{}`: {e}", a.signal))
                .hint(format!("it expects a {}", type_text(Some(&t))))
        })?;
        c.set_signal(&id, &a.signal, value)
            .await
            .map_err(|e| not_found(e, &a.execution, &a.signal))
    })?;
    crate::process::write_data(&format!("Set {} of {}\n", a.signal, a.execution))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn simple(s: SimpleType) -> LiteralType {
        LiteralType {
            r#type: Some(literal_type::Type::Simple(s as i32)),
            ..Default::default()
        }
    }

    #[test]
    fn values_are_read_as_the_signals_type() {
        assert_eq!(
            parse_value("42", &simple(SimpleType::Integer)).unwrap(),
            primitive_literal(primitive::Value::Integer(42))
        );
        assert_eq!(
            parse_value("42", &simple(SimpleType::String)).unwrap(),
            primitive_literal(primitive::Value::StringValue("42".into()))
        );
        assert_eq!(
            parse_value("yes", &simple(SimpleType::Boolean)).unwrap(),
            primitive_literal(primitive::Value::Boolean(true))
        );
        assert!(parse_value("4.5", &simple(SimpleType::Integer)).is_err());
        let list = LiteralType {
            r#type: Some(literal_type::Type::CollectionType(Box::new(simple(
                SimpleType::Float,
            )))),
            ..Default::default()
        };
        assert!(parse_value("[1.5, 2]", &list).is_ok());
        assert!(parse_value("[\"a\"]", &list).is_err());
    }
}
