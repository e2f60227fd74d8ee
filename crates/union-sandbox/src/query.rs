//! List requests as flyteadmin reads them: `limit` (at least 1), an offset `token`, `sort_by`
//! and the `filters` mini-language (`eq(version,v1)+value_in(name,a;b)`).

use tonic::Status;

use super::store::{Column, Filter, FilterOp, FilterValue, ListQuery};
use union_idl::flyteidl::admin::{sort::Direction, Sort};

/// Largest page the sandbox returns, whatever the request asks.
pub const MAX_LIMIT: u32 = 10_000;

/// Parts of a list request, before validation.
pub struct ListParams<'a> {
    pub org: &'a str,
    pub project: &'a str,
    pub domain: &'a str,
    pub name: Option<&'a str>,
    pub limit: u32,
    pub token: &'a str,
    pub filters: &'a str,
    pub sort_by: Option<&'a Sort>,
}

/// Validate a list request and turn it into a store query.
pub fn list_query(p: ListParams<'_>) -> Result<ListQuery, Status> {
    crate::status::require("project", p.project)?;
    crate::status::require("domain", p.domain)?;
    // flyteadmin refuses limit 0 rather than defaulting it.
    if p.limit == 0 {
        return Err(Status::invalid_argument(
            "invalid limit: must be greater than 0",
        ));
    }
    let offset = if p.token.is_empty() {
        0
    } else {
        p.token.parse::<u64>().map_err(|_| {
            Status::invalid_argument(format!("invalid pagination token `{}`", p.token))
        })?
    };
    let (sort, ascending) = match p.sort_by {
        None => (Column::CreatedAt, false),
        Some(s) => {
            let column = match s.key.as_str() {
                "" | "created_at" => Column::CreatedAt,
                "updated_at" => Column::UpdatedAt,
                "name" => Column::Name,
                "version" => Column::Version,
                other => {
                    return Err(Status::invalid_argument(format!(
                        "invalid sort key `{other}`: the sandbox sorts by created_at, updated_at, name or version"
                    )))
                }
            };
            (column, s.direction == Direction::Ascending as i32)
        }
    };
    Ok(ListQuery {
        org: p.org.to_string(),
        project: p.project.to_string(),
        domain: p.domain.to_string(),
        name: p.name.filter(|n| !n.is_empty()).map(str::to_string),
        filters: parse_filters(p.filters)?,
        sort,
        ascending,
        limit: p.limit.min(MAX_LIMIT),
        offset,
    })
}

/// The token of the next page: flyteadmin returns the next offset when the page is full.
pub fn next_token(q: &ListQuery, returned: usize) -> String {
    if returned as u64 >= u64::from(q.limit) && returned > 0 {
        (q.offset + returned as u64).to_string()
    } else {
        String::new()
    }
}

/// Parse flyteadmin's filter expressions: `op(field,value)` terms joined by `+`; `value_in`
/// takes `;`-separated values. Supported fields: name, version, state.
pub fn parse_filters(s: &str) -> Result<Vec<Filter>, Status> {
    let mut out = Vec::new();
    for term in s.split('+').map(str::trim).filter(|t| !t.is_empty()) {
        let bad = || {
            Status::invalid_argument(format!("invalid filter `{term}`: expected op(field,value)"))
        };
        let open = term.find('(').ok_or_else(bad)?;
        let inner = term[open + 1..].strip_suffix(')').ok_or_else(bad)?;
        let (field, value) = inner.split_once(',').ok_or_else(bad)?;
        let op = match &term[..open] {
            "eq" => FilterOp::Eq,
            "ne" => FilterOp::Ne,
            "gt" => FilterOp::Gt,
            "gte" => FilterOp::Gte,
            "lt" => FilterOp::Lt,
            "lte" => FilterOp::Lte,
            "contains" => FilterOp::Contains,
            "value_in" => FilterOp::ValueIn,
            other => {
                return Err(Status::invalid_argument(format!(
                    "unsupported filter operation `{other}` in `{term}`"
                )))
            }
        };
        // Field names may be qualified by entity ("launch_plan.state"), as flyteadmin accepts.
        let field = field.trim();
        let bare = field.rsplit('.').next().unwrap_or(field);
        let column = match bare {
            "name" => Column::Name,
            "version" => Column::Version,
            "state" => Column::State,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "unsupported filter field `{field}` in `{term}`: the sandbox filters on name, version and state"
                )))
            }
        };
        let raw: Vec<&str> = if op == FilterOp::ValueIn {
            value.split(';').collect()
        } else {
            vec![value]
        };
        let mut values = Vec::new();
        for v in raw {
            let v = v.trim();
            values.push(if column == Column::State {
                FilterValue::Int(v.parse().map_err(|_| {
                    Status::invalid_argument(format!(
                        "invalid filter `{term}`: state must be an integer"
                    ))
                })?)
            } else {
                FilterValue::Text(v.to_string())
            });
        }
        out.push(Filter { column, op, values });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_flyteadmin_filters() {
        let f = parse_filters("eq(version,v1)+value_in(launch_plan.name,a;b)").unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].column, Column::Version);
        assert_eq!(f[1].values.len(), 2);
        assert!(parse_filters("eq(colour,red)").is_err());
        assert!(parse_filters("frobnicate(name,x)").is_err());
        assert!(parse_filters("").unwrap().is_empty());
    }
}
