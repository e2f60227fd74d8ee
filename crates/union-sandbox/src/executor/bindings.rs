//! Node inputs from `Binding`s, and branch conditions (`BooleanExpression`) on literals.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use union_idl::flyteidl::core::{
    binding_data, boolean_expression, comparison_expression::Operator,
    conjunction_expression::LogicalOperator, literal, operand, primitive, promise_attribute,
    scalar, Binary, Binding, BindingData, BooleanExpression, Literal, LiteralCollection,
    LiteralMap, Operand, Primitive, PromiseAttribute, Scalar, Union,
};

/// The id flytekit gives the implicit node that provides the workflow's inputs.
pub const START_NODE: &str = "start-node";

/// Outputs of the nodes completed so far in one workflow scope, by template node id
/// (`start-node` holds the workflow inputs).
pub type Scope = BTreeMap<String, LiteralMap>;

/// Resolve every binding of a node (or of a workflow's outputs) against `scope`.
pub fn resolve_bindings(bindings: &[Binding], scope: &Scope) -> Result<LiteralMap, String> {
    let mut literals = BTreeMap::new();
    for b in bindings {
        let data = b
            .binding
            .as_ref()
            .ok_or_else(|| format!("input `{}` has no binding", b.var))?;
        let value = resolve(data, scope).map_err(|e| format!("input `{}`: {e}", b.var))?;
        literals.insert(b.var.clone(), value);
    }
    Ok(LiteralMap { literals })
}

/// Resolve one binding value.
pub fn resolve(data: &BindingData, scope: &Scope) -> Result<Literal, String> {
    let value = match &data.value {
        Some(binding_data::Value::Scalar(s)) => lit(literal::Value::Scalar(Box::new(s.clone()))),
        Some(binding_data::Value::Collection(c)) => {
            let literals = c
                .bindings
                .iter()
                .map(|d| resolve(d, scope))
                .collect::<Result<Vec<_>, _>>()?;
            lit(literal::Value::Collection(LiteralCollection { literals }))
        }
        Some(binding_data::Value::Map(m)) => {
            let mut literals = BTreeMap::new();
            for (k, d) in &m.bindings {
                literals.insert(k.clone(), resolve(d, scope)?);
            }
            lit(literal::Value::Map(LiteralMap { literals }))
        }
        Some(binding_data::Value::Promise(p)) => {
            // flytekit names the workflow-input node "" (GLOBAL_INPUT_NODE_ID); flytepropeller
            // reads an empty node id as start-node.
            let node_id = if p.node_id.is_empty() {
                START_NODE
            } else {
                p.node_id.as_str()
            };
            let outputs = scope
                .get(node_id)
                .ok_or_else(|| format!("node `{}` has not produced outputs", p.node_id))?;
            let value = outputs.literals.get(&p.var).ok_or_else(|| {
                if node_id == START_NODE {
                    format!(
                        "the workflow input `{}` was not given and has no default",
                        p.var
                    )
                } else {
                    format!("node `{}` has no output `{}`", p.node_id, p.var)
                }
            })?;
            follow_attr_path(value, &p.attr_path)?
        }
        Some(binding_data::Value::OffloadedMetadata(_)) => {
            return Err("offloaded literals are not supported by the sandbox".into())
        }
        None => return Err("empty binding".into()),
    };
    Ok(match &data.union {
        // flytepropeller wraps a value bound to a union-typed input in a Union literal of the
        // target type (the producer's output is the variant itself).
        Some(info) if !is_union(&value) => lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Union(Box::new(Union {
                value: Some(Box::new(value)),
                r#type: info.target_type.clone(),
            }))),
        }))),
        _ => value,
    })
}

fn lit(value: literal::Value) -> Literal {
    Literal {
        value: Some(value),
        ..Default::default()
    }
}

fn is_union(l: &Literal) -> bool {
    matches!(&l.value, Some(literal::Value::Scalar(s)) if matches!(s.value, Some(scalar::Value::Union(_))))
}

/// `promise.attr_path`: indexes into lists, keys into maps, into generic (dataclass JSON)
/// structs and into msgpack binaries (how flytekit 1.14+ sends dataclasses and pydantic models).
fn follow_attr_path(value: &Literal, path: &[PromiseAttribute]) -> Result<Literal, String> {
    let mut current = value.clone();
    for (step, attr) in path.iter().enumerate() {
        let current_value = unwrap_union(&current).clone();
        current = match (&current_value.value, &attr.value) {
            (Some(literal::Value::Collection(c)), Some(promise_attribute::Value::IntValue(i))) => {
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| c.literals.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        format!("index {i} is out of range (list of {})", c.literals.len())
                    })?
            }
            (Some(literal::Value::Map(m)), Some(promise_attribute::Value::StringValue(k))) => m
                .literals
                .get(k)
                .cloned()
                .ok_or_else(|| format!("key `{k}` is not in the map"))?,
            (Some(literal::Value::Scalar(s)), Some(attr_value)) => match &s.value {
                Some(scalar::Value::Generic(st)) => {
                    let v = match attr_value {
                        promise_attribute::Value::StringValue(k) => st.fields.get(k).cloned(),
                        promise_attribute::Value::IntValue(_) => None,
                    };
                    json_value_to_literal(&v.ok_or_else(|| {
                        format!("attribute {} is not in the struct", attr_text(attr_value))
                    })?)
                }
                Some(scalar::Value::Binary(b)) => return follow_in_binary(b, &path[step..]),
                _ => {
                    return Err(format!(
                        "cannot take attribute {} of a scalar",
                        attr_text(attr_value)
                    ))
                }
            },
            _ => return Err(format!("cannot follow attribute path {path:?}")),
        };
    }
    Ok(current)
}

fn attr_text(a: &promise_attribute::Value) -> String {
    match a {
        promise_attribute::Value::StringValue(k) => format!("`{k}`"),
        promise_attribute::Value::IntValue(i) => format!("[{i}]"),
    }
}

/// The rest of an attribute path inside a msgpack binary, as flytepropeller resolves it: a
/// primitive comes out as a primitive literal, anything else as a msgpack binary of that part.
fn follow_in_binary(b: &Binary, path: &[PromiseAttribute]) -> Result<Literal, String> {
    if b.tag != "msgpack" {
        return Err(format!(
            "cannot take attributes of a binary value tagged `{}` (only msgpack)",
            b.tag
        ));
    }
    let mut value = rmpv::decode::read_value(&mut b.value.as_slice())
        .map_err(|e| format!("the msgpack value cannot be read: {e}"))?;
    for attr in path {
        value = match (value, &attr.value) {
            (rmpv::Value::Map(entries), Some(promise_attribute::Value::StringValue(k))) => entries
                .into_iter()
                .find(|(key, _)| key.as_str() == Some(k.as_str()))
                .map(|(_, v)| v)
                .ok_or_else(|| format!("attribute `{k}` is not in the value"))?,
            (rmpv::Value::Array(items), Some(promise_attribute::Value::IntValue(i))) => {
                let len = items.len();
                usize::try_from(*i)
                    .ok()
                    .and_then(|i| items.into_iter().nth(i))
                    .ok_or_else(|| format!("index {i} is out of range (list of {len})"))?
            }
            (_, Some(a)) => {
                return Err(format!(
                    "cannot take attribute {} of this value",
                    attr_text(a)
                ))
            }
            (_, None) => return Err("empty attribute".into()),
        };
    }
    let prim = |p: primitive::Value| {
        lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(p) })),
        })))
    };
    Ok(match value {
        rmpv::Value::String(s) if s.as_str().is_some() => prim(primitive::Value::StringValue(
            s.into_str().unwrap_or_default(),
        )),
        rmpv::Value::Boolean(x) => prim(primitive::Value::Boolean(x)),
        rmpv::Value::Integer(i) if i.as_i64().is_some() => {
            prim(primitive::Value::Integer(i.as_i64().unwrap_or_default()))
        }
        rmpv::Value::F64(f) => prim(primitive::Value::FloatValue(f)),
        rmpv::Value::F32(f) => prim(primitive::Value::FloatValue(f64::from(f))),
        other => {
            let mut bytes = Vec::new();
            rmpv::encode::write_value(&mut bytes, &other)
                .map_err(|e| format!("cannot encode the attribute's value: {e}"))?;
            lit(literal::Value::Scalar(Box::new(Scalar {
                value: Some(scalar::Value::Binary(Binary {
                    value: bytes,
                    tag: "msgpack".into(),
                })),
            })))
        }
    })
}

fn json_value_to_literal(v: &prost_types::Value) -> Literal {
    use prost_types::value::Kind;
    let prim = |p: primitive::Value| {
        lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Primitive(Primitive { value: Some(p) })),
        })))
    };
    match &v.kind {
        Some(Kind::StringValue(s)) => prim(primitive::Value::StringValue(s.clone())),
        Some(Kind::BoolValue(b)) => prim(primitive::Value::Boolean(*b)),
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            prim(primitive::Value::Integer(*n as i64))
        }
        Some(Kind::NumberValue(n)) => prim(primitive::Value::FloatValue(*n)),
        Some(Kind::ListValue(l)) => lit(literal::Value::Collection(LiteralCollection {
            literals: l.values.iter().map(json_value_to_literal).collect(),
        })),
        Some(Kind::StructValue(s)) => lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Generic(s.clone())),
        }))),
        Some(Kind::NullValue(_)) | None => lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::NoneType(Default::default())),
        }))),
    }
}

/// The value inside a union literal (or the literal itself).
pub fn unwrap_union(l: &Literal) -> &Literal {
    match &l.value {
        Some(literal::Value::Scalar(s)) => match &s.value {
            Some(scalar::Value::Union(u)) => u.value.as_deref().map(unwrap_union).unwrap_or(l),
            _ => l,
        },
        _ => l,
    }
}

/// A comparable operand value.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Prim(primitive::Value),
    None,
}

/// Evaluate a branch condition; `inputs` are the branch node's resolved inputs (`Var` operands).
pub fn evaluate(expr: &BooleanExpression, inputs: &LiteralMap) -> Result<bool, String> {
    match &expr.expr {
        Some(boolean_expression::Expr::Conjunction(c)) => {
            let left = c
                .left_expression
                .as_deref()
                .ok_or("conjunction without left side")?;
            let right = c
                .right_expression
                .as_deref()
                .ok_or("conjunction without right side")?;
            match LogicalOperator::try_from(c.operator)
                .map_err(|_| format!("unknown operator {}", c.operator))?
            {
                LogicalOperator::And => Ok(evaluate(left, inputs)? && evaluate(right, inputs)?),
                LogicalOperator::Or => Ok(evaluate(left, inputs)? || evaluate(right, inputs)?),
            }
        }
        Some(boolean_expression::Expr::Comparison(c)) => {
            let op = Operator::try_from(c.operator)
                .map_err(|_| format!("unknown comparison operator {}", c.operator))?;
            let left = operand_value(c.left_value.as_ref(), inputs)?;
            let right = operand_value(c.right_value.as_ref(), inputs)?;
            compare(op, &left, &right)
        }
        None => Err("empty condition".into()),
    }
}

// Older flytekit versions write `Operand.primitive` (deprecated in favour of `scalar`).
#[allow(deprecated)]
fn operand_value(op: Option<&Operand>, inputs: &LiteralMap) -> Result<Value, String> {
    match op.and_then(|o| o.val.as_ref()) {
        Some(operand::Val::Primitive(p)) => p
            .value
            .clone()
            .map(Value::Prim)
            .ok_or_else(|| "empty primitive".into()),
        Some(operand::Val::Scalar(s)) => scalar_value(s),
        Some(operand::Val::Var(name)) => {
            let l = inputs
                .literals
                .get(name)
                .ok_or_else(|| format!("the condition reads `{name}`, which is not an input"))?;
            match &unwrap_union(l).value {
                Some(literal::Value::Scalar(s)) => scalar_value(s),
                _ => Err(format!(
                    "`{name}` is not a primitive; the sandbox compares primitives only"
                )),
            }
        }
        None => Err("empty operand".into()),
    }
}

fn scalar_value(s: &Scalar) -> Result<Value, String> {
    match &s.value {
        Some(scalar::Value::Primitive(p)) => p
            .value
            .clone()
            .map(Value::Prim)
            .ok_or_else(|| "empty primitive".into()),
        Some(scalar::Value::NoneType(_)) => Ok(Value::None),
        Some(scalar::Value::Union(u)) => match u.value.as_deref().map(|l| &l.value) {
            Some(Some(literal::Value::Scalar(s))) => scalar_value(s),
            _ => Err("a union holding a non-scalar cannot be compared".into()),
        },
        _ => Err("only primitives and None can be compared".into()),
    }
}

fn compare(op: Operator, left: &Value, right: &Value) -> Result<bool, String> {
    use primitive::Value as P;
    let ord: Option<Ordering> = match (left, right) {
        (Value::None, Value::None) => Some(Ordering::Equal),
        (Value::None, _) | (_, Value::None) => None,
        (Value::Prim(a), Value::Prim(b)) => match (a, b) {
            (P::Integer(a), P::Integer(b)) => Some(a.cmp(b)),
            (P::Integer(a), P::FloatValue(b)) => (*a as f64).partial_cmp(b),
            (P::FloatValue(a), P::Integer(b)) => a.partial_cmp(&(*b as f64)),
            (P::FloatValue(a), P::FloatValue(b)) => a.partial_cmp(b),
            (P::StringValue(a), P::StringValue(b)) => Some(a.cmp(b)),
            (P::Boolean(a), P::Boolean(b)) => Some(a.cmp(b)),
            (P::Datetime(a), P::Datetime(b)) => {
                Some((a.seconds, a.nanos).cmp(&(b.seconds, b.nanos)))
            }
            (P::Duration(a), P::Duration(b)) => {
                Some((a.seconds, a.nanos).cmp(&(b.seconds, b.nanos)))
            }
            _ => return Err(format!("cannot compare {a:?} with {b:?}")),
        },
    };
    Ok(match (op, ord) {
        (Operator::Eq, o) => o == Some(Ordering::Equal),
        (Operator::Neq, o) => o != Some(Ordering::Equal),
        (_, None) => return Err("None can only be compared for (in)equality".into()),
        (Operator::Gt, Some(o)) => o == Ordering::Greater,
        (Operator::Gte, Some(o)) => o != Ordering::Less,
        (Operator::Lt, Some(o)) => o == Ordering::Less,
        (Operator::Lte, Some(o)) => o != Ordering::Greater,
    })
}

/// A primitive literal (for tests and default values).
pub fn primitive_literal(p: primitive::Value) -> Literal {
    lit(literal::Value::Scalar(Box::new(Scalar {
        value: Some(scalar::Value::Primitive(Primitive { value: Some(p) })),
    })))
}

#[cfg(test)]
#[allow(deprecated)]
mod tests {
    use super::*;
    use union_idl::flyteidl::core::{
        BindingDataCollection, ComparisonExpression, ConjunctionExpression, OutputReference,
        UnionInfo,
    };

    fn int(i: i64) -> Literal {
        primitive_literal(primitive::Value::Integer(i))
    }

    fn promise(node: &str, var: &str) -> BindingData {
        BindingData {
            value: Some(binding_data::Value::Promise(OutputReference {
                node_id: node.into(),
                var: var.into(),
                attr_path: vec![],
            })),
            union: None,
        }
    }

    fn scope() -> Scope {
        let mut s = Scope::new();
        s.insert(
            START_NODE.into(),
            LiteralMap {
                literals: [("x".to_string(), int(3))].into(),
            },
        );
        let list = lit(literal::Value::Collection(LiteralCollection {
            literals: vec![int(10), int(20)],
        }));
        s.insert(
            "n0".into(),
            LiteralMap {
                literals: [("o0".to_string(), list)].into(),
            },
        );
        s
    }

    #[test]
    fn resolves_promises_collections_attr_paths_and_unions() {
        let s = scope();
        let coll = BindingData {
            value: Some(binding_data::Value::Collection(BindingDataCollection {
                bindings: vec![promise("", "x"), promise("n0", "o0")],
            })),
            union: None,
        };
        let v = resolve(&coll, &s).unwrap();
        let Some(literal::Value::Collection(c)) = v.value else {
            panic!()
        };
        assert_eq!(c.literals[0], int(3));

        let mut indexed = promise("n0", "o0");
        if let Some(binding_data::Value::Promise(p)) = &mut indexed.value {
            p.attr_path = vec![PromiseAttribute {
                value: Some(promise_attribute::Value::IntValue(1)),
            }];
        }
        assert_eq!(resolve(&indexed, &s).unwrap(), int(20));

        let mut u = promise(START_NODE, "x");
        u.union = Some(UnionInfo { target_type: None });
        let wrapped = resolve(&u, &s).unwrap();
        assert!(is_union(&wrapped));
        assert_eq!(unwrap_union(&wrapped), &int(3));

        let err = resolve(&promise(START_NODE, "missing"), &s).unwrap_err();
        assert!(err.contains("`missing` was not given"), "{err}");
        let err = resolve(&promise("n9", "o0"), &s).unwrap_err();
        assert!(err.contains("n9"), "{err}");
    }

    /// As flytepropeller: a primitive inside a msgpack dataclass comes out as a primitive, a
    /// nested object or list as msgpack of that part.
    #[test]
    fn follows_attribute_paths_into_msgpack() {
        use rmpv::Value as V;
        let dc = V::Map(vec![
            (V::from("count"), V::from(3)),
            (
                V::from("names"),
                V::Array(vec![V::from("ada"), V::from("grace")]),
            ),
            (
                V::from("inner"),
                V::Map(vec![(V::from("weight"), V::F64(0.5))]),
            ),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &dc).unwrap();
        let binary = lit(literal::Value::Scalar(Box::new(Scalar {
            value: Some(scalar::Value::Binary(Binary {
                value: bytes,
                tag: "msgpack".into(),
            })),
        })));
        let key = |k: &str| PromiseAttribute {
            value: Some(promise_attribute::Value::StringValue(k.into())),
        };
        let index = |i: i32| PromiseAttribute {
            value: Some(promise_attribute::Value::IntValue(i)),
        };
        assert_eq!(follow_attr_path(&binary, &[key("count")]).unwrap(), int(3));
        assert_eq!(
            follow_attr_path(&binary, &[key("names"), index(1)]).unwrap(),
            primitive_literal(primitive::Value::StringValue("grace".into()))
        );
        let inner = follow_attr_path(&binary, &[key("inner")]).unwrap();
        let Some(literal::Value::Scalar(s)) = &inner.value else {
            panic!("{inner:?}")
        };
        let Some(scalar::Value::Binary(b)) = &s.value else {
            panic!("{inner:?}")
        };
        assert_eq!(b.tag, "msgpack");
        assert_eq!(
            rmpv::decode::read_value(&mut b.value.as_slice()).unwrap(),
            V::Map(vec![(V::from("weight"), V::F64(0.5))])
        );
        let err = follow_attr_path(&binary, &[key("nope")]).unwrap_err();
        assert!(err.contains("`nope`"), "{err}");
        let err = follow_attr_path(&binary, &[key("names"), index(5)]).unwrap_err();
        assert!(err.contains("out of range"), "{err}");
    }

    fn cmp(op: Operator, var: &str, right: primitive::Value) -> BooleanExpression {
        BooleanExpression {
            expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
                operator: op as i32,
                left_value: Some(Operand {
                    val: Some(operand::Val::Var(var.into())),
                }),
                right_value: Some(Operand {
                    val: Some(operand::Val::Primitive(Primitive { value: Some(right) })),
                }),
            })),
        }
    }

    #[test]
    fn evaluates_comparisons_and_conjunctions() {
        let inputs = LiteralMap {
            literals: [
                ("x".to_string(), int(3)),
                (
                    "f".to_string(),
                    primitive_literal(primitive::Value::FloatValue(2.5)),
                ),
            ]
            .into(),
        };
        assert!(evaluate(
            &cmp(Operator::Gt, "x", primitive::Value::Integer(2)),
            &inputs
        )
        .unwrap());
        assert!(!evaluate(
            &cmp(Operator::Lt, "x", primitive::Value::Integer(2)),
            &inputs
        )
        .unwrap());
        assert!(evaluate(
            &cmp(Operator::Lte, "f", primitive::Value::Integer(3)),
            &inputs
        )
        .unwrap());
        let and = BooleanExpression {
            expr: Some(boolean_expression::Expr::Conjunction(Box::new(
                ConjunctionExpression {
                    operator: LogicalOperator::And as i32,
                    left_expression: Some(Box::new(cmp(
                        Operator::Eq,
                        "x",
                        primitive::Value::Integer(3),
                    ))),
                    right_expression: Some(Box::new(cmp(
                        Operator::Gt,
                        "f",
                        primitive::Value::FloatValue(9.0),
                    ))),
                },
            ))),
        };
        assert!(!evaluate(&and, &inputs).unwrap());
        let err = evaluate(
            &cmp(Operator::Eq, "x", primitive::Value::StringValue("a".into())),
            &inputs,
        )
        .unwrap_err();
        assert!(err.contains("cannot compare"), "{err}");
        let none = BooleanExpression {
            expr: Some(boolean_expression::Expr::Comparison(ComparisonExpression {
                operator: Operator::Eq as i32,
                left_value: Some(Operand {
                    val: Some(operand::Val::Var("x".into())),
                }),
                right_value: Some(Operand {
                    val: Some(operand::Val::Scalar(Scalar {
                        value: Some(scalar::Value::NoneType(Default::default())),
                    })),
                }),
            })),
        };
        assert!(!evaluate(&none, &inputs).unwrap());
    }
}
