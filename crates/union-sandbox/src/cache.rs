//! Cached task outputs, kept in the sandbox's database the way DataCatalog keeps them: by task
//! (project, domain, name), `cache_version`, interface and inputs hash, across executions.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use prost::Message;
use rusqlite::{params, OptionalExtension};

use crate::executor::{AttemptId, CacheKey, TaskCache};
use crate::store::{now_nanos, Store};
use union_idl::flyteidl::core::LiteralMap;

/// The sandbox's task cache.
#[derive(Clone)]
pub struct Cache {
    store: Arc<Store>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

impl Cache {
    /// A cache kept in `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Cache { store }
    }
}

impl TaskCache for Cache {
    fn get<'a>(&'a self, key: &'a CacheKey) -> BoxFuture<'a, Option<LiteralMap>> {
        let store = self.store.clone();
        let key = key.clone();
        Box::pin(async move {
            let bytes: Option<Vec<u8>> = tokio::task::spawn_blocking(move || {
                store.read(|c| {
                    Ok(c.prepare_cached(
                        "SELECT outputs FROM task_cache WHERE project=?1 AND domain=?2 AND task=?3
                         AND version=?4 AND signature=?5 AND inputs=?6",
                    )?
                    .query_row(
                        params![
                            key.project,
                            key.domain,
                            key.task,
                            key.version,
                            key.signature,
                            key.inputs
                        ],
                        |r| r.get(0),
                    )
                    .optional()?)
                })
            })
            .await
            .ok()?
            .ok()?;
            // An unreadable entry is a miss: the task runs and replaces it.
            LiteralMap::decode(bytes?.as_slice()).ok()
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a CacheKey,
        outputs: &'a LiteralMap,
        producer: &'a AttemptId,
    ) -> BoxFuture<'a, Result<(), String>> {
        let store = self.store.clone();
        let key = key.clone();
        let outputs = outputs.encode_to_vec();
        let execution = producer.execution.encode_to_vec();
        let node_id = producer.node_id.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                store.write(|tx| {
                    tx.prepare_cached(
                        "INSERT OR REPLACE INTO task_cache (project, domain, task, version, signature,
                         inputs, outputs, producer, node_id, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )?
                    .execute(params![
                        key.project,
                        key.domain,
                        key.task,
                        key.version,
                        key.signature,
                        key.inputs,
                        outputs,
                        execution,
                        node_id,
                        now_nanos()
                    ])?;
                    Ok(())
                })
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
        })
    }
}
