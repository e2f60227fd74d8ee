//! The ExecutionSpec of a new execution, as pyflyte run's options make it
//! (`flytekit/remote/remote.py`, `_execute`; `clis/sdk_in_container/run.py`).

use union_idl::flyteidl::admin;
use union_idl::flyteidl::core;

/// What pyflyte run's execution options set (`flytekit/remote/remote.py`, `_execute`).
#[derive(Debug, Clone, Default)]
pub struct ExecutionOptions {
    pub envs: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub annotations: Vec<(String, String)>,
    pub tags: Vec<String>,
    pub service_account: Option<String>,
    pub raw_output_data_prefix: Option<String>,
    pub overwrite_cache: bool,
    pub interruptible: Option<bool>,
    pub max_parallelism: Option<i32>,
    pub cluster_pool: Option<String>,
    pub execution_cluster_label: Option<String>,
    pub disable_notifications: bool,
}

impl ExecutionOptions {
    /// The ExecutionSpec flytekit builds: principal "placeholder" (the server puts the caller's
    /// identity there), an empty notification list unless notifications are disabled.
    // `tags` is deprecated in flyteidl, and flytekit 1.16 still sends it: so do we.
    #[allow(deprecated)]
    pub fn spec(&self, target: core::Identifier) -> admin::ExecutionSpec {
        let kv = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .cloned()
                .collect::<std::collections::BTreeMap<String, String>>()
        };
        admin::ExecutionSpec {
            launch_plan: Some(target),
            metadata: Some(admin::ExecutionMetadata {
                mode: admin::execution_metadata::ExecutionMode::Manual as i32,
                principal: "placeholder".into(),
                ..Default::default()
            }),
            notification_overrides: Some(if self.disable_notifications {
                admin::execution_spec::NotificationOverrides::DisableAll(true)
            } else {
                admin::execution_spec::NotificationOverrides::Notifications(
                    admin::NotificationList::default(),
                )
            }),
            labels: (!self.labels.is_empty()).then(|| admin::Labels {
                values: kv(&self.labels),
            }),
            annotations: (!self.annotations.is_empty()).then(|| admin::Annotations {
                values: kv(&self.annotations),
            }),
            security_context: self
                .service_account
                .as_ref()
                .map(|sa| core::SecurityContext {
                    run_as: Some(core::Identity {
                        k8s_service_account: sa.clone(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            raw_output_data_config: self.raw_output_data_prefix.as_ref().map(|p| {
                admin::RawOutputDataConfig {
                    output_location_prefix: p.clone(),
                }
            }),
            // flytekit's ExecutionSpec always carries one (empty unless set): so do we.
            auth_role: Some(admin::AuthRole::default()),
            max_parallelism: self.max_parallelism.unwrap_or(0),
            interruptible: self.interruptible,
            overwrite_cache: self.overwrite_cache,
            envs: (!self.envs.is_empty()).then(|| admin::Envs {
                values: self
                    .envs
                    .iter()
                    .map(|(key, value)| core::KeyValuePair {
                        key: key.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            }),
            tags: self.tags.clone(),
            cluster_assignment: self
                .cluster_pool
                .as_ref()
                .map(|p| admin::ClusterAssignment {
                    cluster_pool_name: p.clone(),
                }),
            execution_cluster_label: self
                .execution_cluster_label
                .as_ref()
                .map(|l| admin::ExecutionClusterLabel { value: l.clone() }),
            ..Default::default()
        }
    }
}
