//! The list queries every entity kind shares: versions of one name, and the names of a kind.

use tonic::{Response, Status};

use super::status::db;
use super::AdminApi;
use crate::query::{self, ListParams};
use crate::store::{EntityKind, EntityRow, NamedRow};
use union_idl::flyteidl::admin::{
    NamedEntityIdentifier, NamedEntityIdentifierList, NamedEntityIdentifierListRequest,
    ResourceListRequest,
};

impl AdminApi {
    pub(super) async fn list(
        &self,
        kind: EntityKind,
        r: ResourceListRequest,
    ) -> Result<(Vec<EntityRow>, String), Status> {
        let id =
            r.id.as_ref()
                .ok_or_else(|| Status::invalid_argument("missing id"))?;
        let q = query::list_query(ListParams {
            org: &id.org,
            project: &id.project,
            domain: &id.domain,
            name: Some(&id.name),
            limit: r.limit,
            token: &r.token,
            filters: &r.filters,
            sort_by: r.sort_by.as_ref(),
        })?;
        let (rows, q) = self
            .blocking(move |store| Ok((store.list_entities(kind, &q).map_err(db)?, q)))
            .await?;
        let token = query::next_token(&q, rows.len());
        Ok((rows, token))
    }

    pub(super) async fn list_ids(
        &self,
        kind: EntityKind,
        r: NamedEntityIdentifierListRequest,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        let q = query::list_query(ListParams {
            org: &r.org,
            project: &r.project,
            domain: &r.domain,
            name: None,
            limit: r.limit,
            token: &r.token,
            filters: &r.filters,
            sort_by: r.sort_by.as_ref(),
        })?;
        let (rows, q): (Vec<NamedRow>, _) = self
            .blocking(move |store| Ok((store.list_names(kind, &q).map_err(db)?, q)))
            .await?;
        let token = query::next_token(&q, rows.len());
        let entities = rows
            .into_iter()
            .map(|row| NamedEntityIdentifier {
                project: row.key.project,
                domain: row.key.domain,
                name: row.key.name,
                org: row.key.org,
            })
            .collect();
        Ok(Response::new(NamedEntityIdentifierList { entities, token }))
    }
}
