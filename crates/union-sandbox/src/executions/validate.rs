//! Request checks: input merging (fixed, defaults, given), execution names, and execution ids.

use std::collections::BTreeMap;

use tonic::Status;

use crate::executor;
use union_idl::flyteidl::core::{
    self, LiteralMap, NodeExecutionIdentifier, WorkflowExecutionIdentifier,
};

/// Merge inputs like flyteadmin: fixed inputs cannot be overridden, unknown inputs are refused,
/// defaults fill the rest, and whatever is left without a value is a missing required input.
pub(super) fn check_inputs(
    required_names: &[String],
    defaults: &BTreeMap<String, Option<core::Literal>>,
    given: &LiteralMap,
    fixed: &LiteralMap,
) -> Result<LiteralMap, Status> {
    let known = |k: &String| required_names.contains(k) || defaults.contains_key(k);
    if let Some(k) = given
        .literals
        .keys()
        .find(|k| fixed.literals.contains_key(*k))
    {
        return Err(Status::invalid_argument(format!(
            "input `{k}` is fixed by the launch plan and cannot be set"
        )));
    }
    let unknown: Vec<&String> = given.literals.keys().filter(|k| !known(k)).collect();
    if !unknown.is_empty() {
        return Err(Status::invalid_argument(format!(
            "unknown inputs: {}",
            join(&unknown)
        )));
    }
    let mut out = LiteralMap::default();
    for (k, d) in defaults {
        if let Some(l) = d {
            out.literals.insert(k.clone(), l.clone());
        }
    }
    out.literals.extend(given.literals.clone());
    out.literals.extend(fixed.literals.clone());
    let missing: Vec<&String> = required_names
        .iter()
        .chain(defaults.keys())
        .filter(|k| !out.literals.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(Status::invalid_argument(format!(
            "missing required inputs: {}",
            join(&missing)
        )));
    }
    Ok(out)
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// flyteadmin-style execution name: a letter, then 19 lowercase letters or digits.
pub fn generate_name() -> String {
    const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 20];
    if getrandom::fill(&mut bytes).is_err() {
        // Fall back to the clock: names need to be unique, not secret.
        let t = executor::now_nanos() as u64;
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> ((i % 8) * 8)) as u8 ^ (i as u8).wrapping_mul(37);
        }
    }
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if i == 0 {
                (b'a' + b % 26) as char
            } else {
                ALNUM[*b as usize % ALNUM.len()] as char
            }
        })
        .collect()
}

pub(super) fn validate_name(name: &str) -> Result<String, Status> {
    let ok = name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(Status::invalid_argument(format!(
            "invalid execution name `{name}`: use at most 63 lowercase letters, digits and `-`, starting with a letter"
        )))
    }
}

pub(super) fn exec_id(
    id: Option<&WorkflowExecutionIdentifier>,
) -> Result<WorkflowExecutionIdentifier, Status> {
    let id = id.ok_or_else(|| Status::invalid_argument("missing id"))?;
    crate::status::require("id.project", &id.project)?;
    crate::status::require("id.domain", &id.domain)?;
    crate::status::require("id.name", &id.name)?;
    Ok(id.clone())
}

pub(super) fn nid_name(id: Option<&NodeExecutionIdentifier>) -> String {
    id.map(|i| i.node_id.clone()).unwrap_or_default()
}

pub(super) fn not_found(id: &WorkflowExecutionIdentifier) -> Status {
    Status::not_found(format!(
        "execution `{}` (project `{}`, domain `{}`) does not exist",
        id.name, id.project, id.domain
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_look_like_flyteadmins() {
        for _ in 0..100 {
            let n = generate_name();
            assert_eq!(n.len(), 20);
            assert!(n.starts_with(|c: char| c.is_ascii_lowercase()));
            assert!(validate_name(&n).is_ok());
        }
        assert!(validate_name("Bad_Name").is_err());
    }

    #[test]
    fn inputs_merge_fixed_defaults_and_given() {
        use crate::executor::bindings::primitive_literal;
        use union_idl::flyteidl::core::primitive::Value::Integer;
        let lit = |i| primitive_literal(Integer(i));
        let defaults: BTreeMap<String, Option<core::Literal>> = [
            ("a".to_string(), Some(lit(1))),
            ("b".to_string(), None),
            ("c".to_string(), None),
        ]
        .into();
        let given = LiteralMap {
            literals: [("b".to_string(), lit(2))].into(),
        };
        let fixed = LiteralMap {
            literals: [("c".to_string(), lit(3))].into(),
        };
        let out = check_inputs(&[], &defaults, &given, &fixed).unwrap();
        assert_eq!(out.literals.len(), 3);
        let e = check_inputs(&[], &defaults, &LiteralMap::default(), &fixed).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(
            e.message().contains("missing required inputs: `b`"),
            "{}",
            e.message()
        );
        let e = check_inputs(
            &[],
            &defaults,
            &LiteralMap {
                literals: [("z".to_string(), lit(0))].into(),
            },
            &fixed,
        )
        .unwrap_err();
        assert!(
            e.message().contains("unknown inputs: `z`"),
            "{}",
            e.message()
        );
    }
}
