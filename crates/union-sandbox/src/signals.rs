//! Signals: what gate nodes wait for (`approve`, `wait_for_input`), as flyteadmin's
//! SignalService keeps them. A gate registers its signal with its type (GetOrCreateSignal) and
//! waits; `SetSignal` (FlyteRemote's `approve`, `reject`, `set_signal`, and `union approve` /
//! `union reject` / `union signal`) gives it a value once, checked against that type.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use prost::Message;
use rusqlite::{params, OptionalExtension};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};

use crate::executor::SignalSource;
use crate::status::db;
use crate::store::{now_nanos, Store, StoreError};
use union_idl::flyteidl::admin::{
    Signal, SignalGetOrCreateRequest, SignalList, SignalListRequest, SignalSetRequest,
    SignalSetResponse,
};
use union_idl::flyteidl::core::{
    literal, literal_type, primitive, scalar, Literal, LiteralType, SignalIdentifier, SimpleType,
    WorkflowExecutionIdentifier,
};
use union_idl::flyteidl::service::signal_service_server::{SignalService, SignalServiceServer};

/// The signals of every execution; cheap to clone.
#[derive(Clone)]
pub struct Signals {
    store: Arc<Store>,
    /// Woken whenever a value is set, so that waiting gates look again.
    changed: Arc<Notify>,
}

impl std::fmt::Debug for Signals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signals").finish_non_exhaustive()
    }
}

fn execution_seq(
    c: &rusqlite::Connection,
    id: &WorkflowExecutionIdentifier,
) -> Result<Option<i64>, StoreError> {
    Ok(c.prepare_cached(
        "SELECT seq FROM executions WHERE org=?1 AND project=?2 AND domain=?3 AND name=?4",
    )?
    .query_row(params![id.org, id.project, id.domain, id.name], |r| {
        r.get(0)
    })
    .optional()?)
}

fn missing(what: &str) -> Status {
    Status::invalid_argument(format!("missing {what}"))
}

/// Whether `value` is of `t` (simple types, collections, maps, unions and optionals; other
/// types are accepted as given).
pub fn literal_matches(value: &Literal, t: &LiteralType) -> bool {
    use literal_type::Type as T;
    let Some(ty) = &t.r#type else { return true };
    match (ty, &value.value) {
        (T::UnionType(u), _) => u.variants.iter().any(|v| literal_matches(value, v)),
        (T::Simple(s), Some(literal::Value::Scalar(sc))) => {
            let simple = SimpleType::try_from(*s).unwrap_or(SimpleType::None);
            match (&sc.value, simple) {
                (Some(scalar::Value::Primitive(p)), _) => matches!(
                    (&p.value, simple),
                    (Some(primitive::Value::Integer(_)), SimpleType::Integer)
                        | (Some(primitive::Value::FloatValue(_)), SimpleType::Float)
                        | (Some(primitive::Value::StringValue(_)), SimpleType::String)
                        | (Some(primitive::Value::Boolean(_)), SimpleType::Boolean)
                        | (Some(primitive::Value::Datetime(_)), SimpleType::Datetime)
                        | (Some(primitive::Value::Duration(_)), SimpleType::Duration)
                ),
                (Some(scalar::Value::NoneType(_)), SimpleType::None) => true,
                (Some(scalar::Value::Generic(_)), SimpleType::Struct) => true,
                (Some(scalar::Value::Binary(_)), SimpleType::Binary | SimpleType::Struct) => true,
                (Some(scalar::Value::Error(_)), SimpleType::Error) => true,
                _ => false,
            }
        }
        (T::Simple(_), _) => false,
        (T::CollectionType(item), Some(literal::Value::Collection(c))) => {
            c.literals.iter().all(|l| literal_matches(l, item))
        }
        (T::CollectionType(_), _) => false,
        (T::MapValueType(item), Some(literal::Value::Map(m))) => {
            m.literals.values().all(|l| literal_matches(l, item))
        }
        (T::MapValueType(_), _) => false,
        _ => true,
    }
}

impl Signals {
    /// Signals kept in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Signals {
            store,
            changed: Arc::new(Notify::new()),
        }
    }

    /// The gRPC service.
    pub fn into_server(self) -> SignalServiceServer<Self> {
        SignalServiceServer::new(self)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    ) -> Result<T, Status> {
        crate::status::blocking(&self.store, f).await
    }

    /// GetOrCreateSignal: the signal, registered with `t` if it was not yet.
    async fn get_or_create(
        &self,
        execution: WorkflowExecutionIdentifier,
        signal_id: String,
        t: LiteralType,
    ) -> Result<Signal, Status> {
        self.blocking(move |store| {
            store
                .write(|tx| {
                    let Some(seq) = execution_seq(tx, &execution)? else {
                        return Ok(None);
                    };
                    let now = now_nanos();
                    tx.prepare_cached(
                        "INSERT INTO signals (execution_seq, signal_id, type, created_at, updated_at)
                         VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![seq, signal_id, t.encode_to_vec(), now])?;
                    let (ty, value): (Vec<u8>, Option<Vec<u8>>) = tx
                        .prepare_cached(
                            "SELECT type, value FROM signals WHERE execution_seq=?1 AND signal_id=?2",
                        )?
                        .query_row(params![seq, signal_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    Ok(Some(Signal {
                        id: Some(SignalIdentifier {
                            signal_id: signal_id.clone(),
                            execution_id: Some(execution.clone()),
                        }),
                        r#type: LiteralType::decode(ty.as_slice()).ok(),
                        value: value.and_then(|v| Literal::decode(v.as_slice()).ok()),
                    }))
                })
                .map_err(db)?
                .ok_or_else(|| {
                    Status::not_found(format!(
                        "execution `{}` does not exist in project `{}`, domain `{}`",
                        execution.name, execution.project, execution.domain
                    ))
                })
        })
        .await
    }
}

impl SignalSource for Signals {
    fn wait<'a>(
        &'a self,
        execution: &'a WorkflowExecutionIdentifier,
        signal_id: &'a str,
        t: &'a LiteralType,
    ) -> BoxFuture<'a, Result<Literal, String>> {
        Box::pin(async move {
            loop {
                // Registered before looking, so a value set in between is not missed.
                let changed = self.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let signal = self
                    .get_or_create(execution.clone(), signal_id.to_string(), t.clone())
                    .await
                    .map_err(|s| s.message().to_string())?;
                if let Some(v) = signal.value {
                    return Ok(v);
                }
                // The timeout only bounds a missed wake-up; values arrive through `changed`.
                let _ = tokio::time::timeout(Duration::from_secs(5), changed).await;
            }
        })
    }
}

#[tonic::async_trait]
impl SignalService for Signals {
    async fn get_or_create_signal(
        &self,
        request: Request<SignalGetOrCreateRequest>,
    ) -> Result<Response<Signal>, Status> {
        let req = request.into_inner();
        let id = req.id.ok_or_else(|| missing("id"))?;
        let execution = id.execution_id.ok_or_else(|| missing("id.execution_id"))?;
        if id.signal_id.is_empty() {
            return Err(missing("id.signal_id"));
        }
        let t = req.r#type.ok_or_else(|| missing("type"))?;
        self.get_or_create(execution, id.signal_id, t)
            .await
            .map(Response::new)
    }

    async fn list_signals(
        &self,
        request: Request<SignalListRequest>,
    ) -> Result<Response<SignalList>, Status> {
        let req = request.into_inner();
        let execution = req
            .workflow_execution_id
            .ok_or_else(|| missing("workflow_execution_id"))?;
        let limit = if req.limit == 0 {
            100
        } else {
            req.limit.min(10_000)
        } as i64;
        let offset: i64 = if req.token.is_empty() {
            0
        } else {
            req.token
                .parse()
                .map_err(|_| Status::invalid_argument(format!("invalid token `{}`", req.token)))?
        };
        let exec = execution.clone();
        let rows = self
            .blocking(move |store| {
                store
                    .read(|c| {
                        let Some(seq) = execution_seq(c, &exec)? else {
                            return Ok(None);
                        };
                        let mut stmt = c.prepare_cached(
                            "SELECT signal_id, type, value FROM signals WHERE execution_seq=?1
                             ORDER BY created_at, signal_id LIMIT ?2 OFFSET ?3",
                        )?;
                        let rows = stmt
                            .query_map(params![seq, limit, offset], |r| {
                                Ok((
                                    r.get::<_, String>(0)?,
                                    r.get::<_, Vec<u8>>(1)?,
                                    r.get::<_, Option<Vec<u8>>>(2)?,
                                ))
                            })?
                            .collect::<Result<Vec<_>, _>>()?;
                        Ok(Some(rows))
                    })
                    .map_err(db)
            })
            .await?
            .ok_or_else(|| {
                Status::not_found(format!(
                    "execution `{}` does not exist in project `{}`, domain `{}`",
                    execution.name, execution.project, execution.domain
                ))
            })?;
        let full = rows.len() as i64 == limit;
        let signals = rows
            .into_iter()
            .map(|(signal_id, ty, value)| Signal {
                id: Some(SignalIdentifier {
                    signal_id,
                    execution_id: Some(execution.clone()),
                }),
                r#type: LiteralType::decode(ty.as_slice()).ok(),
                value: value.and_then(|v| Literal::decode(v.as_slice()).ok()),
            })
            .collect();
        Ok(Response::new(SignalList {
            signals,
            token: if full {
                (offset + limit).to_string()
            } else {
                String::new()
            },
        }))
    }

    async fn set_signal(
        &self,
        request: Request<SignalSetRequest>,
    ) -> Result<Response<SignalSetResponse>, Status> {
        let req = request.into_inner();
        let id = req.id.ok_or_else(|| missing("id"))?;
        let execution = id.execution_id.ok_or_else(|| missing("id.execution_id"))?;
        let value = req.value.ok_or_else(|| missing("value"))?;
        let signal_id = id.signal_id;
        self.blocking(move |store| {
            store
                .write(|tx| {
                    let Some(seq) = execution_seq(tx, &execution)? else {
                        return Ok(Err(Status::not_found(format!(
                            "execution `{}` does not exist in project `{}`, domain `{}`",
                            execution.name, execution.project, execution.domain
                        ))));
                    };
                    let row: Option<(Vec<u8>, Option<Vec<u8>>)> = tx
                        .prepare_cached(
                            "SELECT type, value FROM signals WHERE execution_seq=?1 AND signal_id=?2",
                        )?
                        .query_row(params![seq, signal_id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    let Some((ty, current)) = row else {
                        return Ok(Err(Status::not_found(format!(
                            "execution `{}` has no signal `{signal_id}` (yet): it exists once its gate node runs",
                            execution.name
                        ))));
                    };
                    if current.is_some() {
                        return Ok(Err(Status::already_exists(format!(
                            "signal `{signal_id}` of execution `{}` is already set",
                            execution.name
                        ))));
                    }
                    let t = LiteralType::decode(ty.as_slice()).unwrap_or_default();
                    if !literal_matches(&value, &t) {
                        return Ok(Err(Status::invalid_argument(format!(
                            "the value for signal `{signal_id}` does not match its type"
                        ))));
                    }
                    tx.prepare_cached(
                        "UPDATE signals SET value=?1, updated_at=?2 WHERE execution_seq=?3 AND signal_id=?4",
                    )?
                    .execute(params![value.encode_to_vec(), now_nanos(), seq, signal_id])?;
                    Ok(Ok(()))
                })
                .map_err(db)?
        })
        .await?;
        self.changed.notify_waiters();
        Ok(Response::new(SignalSetResponse {}))
    }
}
