//! FlyteAdmin's entity API of `union sandbox` (tasks, workflows, launch plans, named entities):
//! the real `union sandbox start` on port 0, driven through the generated tonic clients.

use crate::support::requests::*;
use crate::support::Sandbox;

use tonic::Code;
use union_idl::flyteidl::admin::{
    sort, ActiveLaunchPlanRequest, ExecutionRecoverRequest, ExecutionRelaunchRequest,
    GetVersionRequest, LaunchPlanState, LaunchPlanUpdateRequest, NamedEntityGetRequest,
    NamedEntityIdentifier, NamedEntityIdentifierListRequest, NamedEntityListRequest,
    ObjectGetRequest, ResourceListRequest, Sort, TaskCreateRequest, WorkflowCreateRequest,
    WorkflowSpec,
};
use union_idl::flyteidl::core::{self, ResourceType};

fn get(id: core::Identifier) -> ObjectGetRequest {
    ObjectGetRequest { id: Some(id) }
}

fn list(name: &str, limit: u32, token: &str) -> ResourceListRequest {
    ResourceListRequest {
        id: Some(NamedEntityIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: name.into(),
            org: String::new(),
        }),
        limit,
        token: token.into(),
        filters: String::new(),
        sort_by: None,
    }
}

fn ids_request(limit: u32) -> NamedEntityIdentifierListRequest {
    NamedEntityIdentifierListRequest {
        project: PROJECT.into(),
        domain: DOMAIN.into(),
        limit,
        sort_by: Some(Sort {
            key: "name".into(),
            direction: sort::Direction::Ascending as i32,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_create_get_list_and_paginate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;

    for v in ["v1", "v2", "v3"] {
        admin
            .create_task(create_task("app.t1", v, "img:1"))
            .await
            .unwrap();
    }
    admin
        .create_task(create_task("app.t2", "v1", "img:1"))
        .await
        .unwrap();

    let task = admin
        .get_task(get(id(ResourceType::Task, "app.t1", "v2")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(task.id.as_ref().unwrap().version, "v2");
    let closure = task.closure.unwrap();
    assert!(closure.created_at.is_some());
    let template = closure.compiled_task.unwrap().template.unwrap();
    assert_eq!(template, task_template("app.t1", "v2", "img:1"));

    // Newest first by default (what FlyteRemote's "latest version" lookup relies on).
    let page1 = admin
        .list_tasks(list("app.t1", 2, ""))
        .await
        .unwrap()
        .into_inner();
    let versions: Vec<_> = page1
        .tasks
        .iter()
        .map(|t| t.id.as_ref().unwrap().version.clone())
        .collect();
    assert_eq!(versions, ["v3", "v2"]);
    assert_eq!(page1.token, "2");
    let page2 = admin
        .list_tasks(list("app.t1", 2, &page1.token))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page2.tasks.len(), 1);
    assert_eq!(page2.tasks[0].id.as_ref().unwrap().version, "v1");
    assert_eq!(page2.token, "");

    let mut by_version = list("app.t1", 10, "");
    by_version.sort_by = Some(Sort {
        key: "version".into(),
        direction: sort::Direction::Ascending as i32,
    });
    by_version.filters = "ne(version,v2)".into();
    let sorted = admin.list_tasks(by_version).await.unwrap().into_inner();
    let versions: Vec<_> = sorted
        .tasks
        .iter()
        .map(|t| t.id.as_ref().unwrap().version.clone())
        .collect();
    assert_eq!(versions, ["v1", "v3"]);

    let ids = admin
        .list_task_ids(ids_request(10))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = ids.entities.iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["app.t1", "app.t2"]);
    let first = admin
        .list_task_ids(ids_request(1))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.entities.len(), 1);
    assert_eq!(first.token, "1");

    let named = admin
        .list_named_entities(NamedEntityListRequest {
            resource_type: ResourceType::Task as i32,
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.entities.len(), 2);
    let one = admin
        .get_named_entity(NamedEntityGetRequest {
            resource_type: ResourceType::Task as i32,
            id: Some(NamedEntityIdentifier {
                project: PROJECT.into(),
                domain: DOMAIN.into(),
                name: "app.t2".into(),
                org: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.id.unwrap().name, "app.t2");

    let version = admin
        .get_version(GetVersionRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(version.control_plane_version.is_some());
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_is_already_exists_when_identical_and_invalid_argument_when_different() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;

    admin
        .create_task(create_task("app.t", "v1", "img:1"))
        .await
        .unwrap();
    let again = admin
        .create_task(create_task("app.t", "v1", "img:1"))
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::AlreadyExists, "{again:?}");

    // A description is not structure (flyteadmin digests the template only).
    let mut described = create_task("app.t", "v1", "img:1");
    described.spec.as_mut().unwrap().description =
        Some(union_idl::flyteidl::admin::DescriptionEntity {
            short_description: "hi".into(),
            ..Default::default()
        });
    assert_eq!(
        admin.create_task(described).await.unwrap_err().code(),
        Code::AlreadyExists
    );

    let different = admin
        .create_task(create_task("app.t", "v1", "img:2"))
        .await
        .unwrap_err();
    assert_eq!(different.code(), Code::InvalidArgument);
    assert!(
        different
            .message()
            .contains("task with different structure already exists"),
        "{}",
        different.message()
    );

    let task_id = id(ResourceType::Task, "app.t", "v1");
    admin
        .create_workflow(create_workflow("app.wf", "v1", &task_id))
        .await
        .unwrap();
    assert_eq!(
        admin
            .create_workflow(create_workflow("app.wf", "v1", &task_id))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    admin
        .create_task(create_task("app.t", "v2", "img:1"))
        .await
        .unwrap();
    let changed = admin
        .create_workflow(create_workflow(
            "app.wf",
            "v1",
            &id(ResourceType::Task, "app.t", "v2"),
        ))
        .await
        .unwrap_err();
    assert_eq!(changed.code(), Code::InvalidArgument);
    assert!(
        changed
            .message()
            .contains("workflow with different structure already exists"),
        "{}",
        changed.message()
    );

    let wf_id = id(ResourceType::Workflow, "app.wf", "v1");
    admin
        .create_launch_plan(create_launch_plan("app.wf", "v1", &wf_id))
        .await
        .unwrap();
    assert_eq!(
        admin
            .create_launch_plan(create_launch_plan("app.wf", "v1", &wf_id))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let mut other = create_launch_plan("app.wf", "v1", &wf_id);
    other.spec.as_mut().unwrap().max_parallelism = 3;
    let e = admin.create_launch_plan(other).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("different structure"),
        "{}",
        e.message()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_are_not_found_and_empty_fields_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;

    let e = admin
        .get_task(get(id(ResourceType::Task, "nope", "v1")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("nope"));
    assert_eq!(
        admin
            .get_workflow(get(id(ResourceType::Workflow, "nope", "v1")))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        admin
            .get_launch_plan(get(id(ResourceType::LaunchPlan, "nope", "v1")))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let e = admin
        .update_launch_plan(LaunchPlanUpdateRequest {
            id: Some(id(ResourceType::LaunchPlan, "nope", "v1")),
            state: LaunchPlanState::Active as i32,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    for field in ["project", "domain", "name", "version"] {
        let mut req = create_task("app.t", "v1", "img");
        let ident = req.id.as_mut().unwrap();
        match field {
            "project" => ident.project.clear(),
            "domain" => ident.domain.clear(),
            "name" => ident.name.clear(),
            _ => ident.version.clear(),
        }
        let e = admin.create_task(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(e.message(), format!("missing {field}"));
    }
    let e = admin
        .create_task(TaskCreateRequest {
            id: create_task("a", "v", "i").id,
            spec: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "missing spec")
    );
    let e = admin
        .create_task(TaskCreateRequest {
            id: None,
            spec: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "missing id")
    );
    let e = admin
        .create_workflow(WorkflowCreateRequest {
            id: Some(id(ResourceType::Workflow, "w", "v")),
            spec: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "missing spec")
    );
    let mut lp = create_launch_plan("lp", "v1", &id(ResourceType::Workflow, "w", "v1"));
    lp.spec.as_mut().unwrap().workflow_id = None;
    let e = admin.create_launch_plan(lp).await.unwrap_err();
    assert_eq!(
        (e.code(), e.message()),
        (Code::InvalidArgument, "missing spec.workflow_id")
    );
    // The identifier's resource type must be the entity's.
    let mut wrong = create_task("app.t", "v1", "img");
    wrong.id.as_mut().unwrap().resource_type = ResourceType::Workflow as i32;
    let e = admin.create_task(wrong).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("unexpected resource type WORKFLOW"),
        "{}",
        e.message()
    );
    let e = admin.list_tasks(list("x", 0, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = admin.list_tasks(list("x", 5, "garbage")).await.unwrap_err();
    assert!(e.message().contains("invalid pagination token"));

    // Everything outside the registration subset is UNIMPLEMENTED, naming the method.
    let e = admin
        .recover_execution(ExecutionRecoverRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    assert!(e.message().contains("RecoverExecution"), "{}", e.message());
    // Relaunch is served: an empty request names what is missing.
    let e = admin
        .relaunch_execution(ExecutionRelaunchRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_and_launch_plans_require_registered_references() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;
    let task_id = id(ResourceType::Task, "app.t", "v1");
    let wf_id = id(ResourceType::Workflow, "app.wf", "v1");

    let e = admin
        .create_workflow(create_workflow("app.wf", "v1", &task_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("task `app.t`") && e.message().contains("not registered"),
        "{}",
        e.message()
    );
    let e = admin
        .create_launch_plan(create_launch_plan("app.wf", "v1", &wf_id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("workflow `app.wf`") && e.message().contains("not registered"),
        "{}",
        e.message()
    );

    admin
        .create_task(create_task("app.t", "v1", "img"))
        .await
        .unwrap();
    admin
        .create_workflow(create_workflow("app.wf", "v1", &task_id))
        .await
        .unwrap();

    // A launch plan node must point at a registered launch plan; a subworkflow must exist too.
    let lp_id = id(ResourceType::LaunchPlan, "app.lp", "v1");
    let outer = |name: &str| WorkflowCreateRequest {
        id: Some(id(ResourceType::Workflow, name, "v1")),
        spec: Some(WorkflowSpec {
            template: Some(workflow_template(name, "v1", &task_id, Some(&lp_id))),
            sub_workflows: vec![],
            description: None,
        }),
    };
    let e = admin.create_workflow(outer("app.outer")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("launch plan `app.lp`"),
        "{}",
        e.message()
    );
    admin
        .create_launch_plan(create_launch_plan("app.lp", "v1", &wf_id))
        .await
        .unwrap();
    admin.create_workflow(outer("app.outer")).await.unwrap();

    let mut with_sub = create_workflow("app.parent", "v1", &task_id);
    with_sub
        .spec
        .as_mut()
        .unwrap()
        .template
        .as_mut()
        .unwrap()
        .nodes
        .push(core::Node {
            id: "sub".into(),
            target: Some(core::node::Target::WorkflowNode(core::WorkflowNode {
                reference: Some(core::workflow_node::Reference::SubWorkflowRef(id(
                    ResourceType::Workflow,
                    "app.missing",
                    "v1",
                ))),
            })),
            ..Default::default()
        });
    let e = admin.create_workflow(with_sub.clone()).await.unwrap_err();
    assert!(
        e.message().contains("subworkflow") && e.message().contains("app.missing"),
        "{}",
        e.message()
    );
    // Shipping the subworkflow in the spec is enough (flytekit does this).
    with_sub
        .spec
        .as_mut()
        .unwrap()
        .sub_workflows
        .push(workflow_template("app.missing", "v1", &task_id, None));
    admin.create_workflow(with_sub).await.unwrap();

    // The compiled closure FlyteRemote reads.
    let wf = admin
        .get_workflow(get(id(ResourceType::Workflow, "app.parent", "v1")))
        .await
        .unwrap()
        .into_inner();
    let compiled = wf.closure.unwrap().compiled_workflow.unwrap();
    let primary = compiled.primary.unwrap();
    let conns = primary.connections.unwrap();
    assert_eq!(conns.upstream["n1"].ids, ["n0", "start-node"]);
    assert_eq!(conns.upstream["n0"].ids, ["start-node"]);
    assert_eq!(conns.upstream["end-node"].ids, ["n1"]);
    assert!(conns.downstream["n0"].ids.contains(&"n1".to_string()));
    assert_eq!(compiled.tasks.len(), 1);
    assert_eq!(
        compiled.tasks[0]
            .template
            .as_ref()
            .unwrap()
            .id
            .as_ref()
            .unwrap()
            .name,
        "app.t"
    );
    assert_eq!(compiled.sub_workflows.len(), 1);

    // Launch plan closure and activation.
    let lp = admin
        .get_launch_plan(get(lp_id.clone()))
        .await
        .unwrap()
        .into_inner();
    let closure = lp.closure.unwrap();
    assert_eq!(closure.state, LaunchPlanState::Inactive as i32);
    assert_eq!(
        closure
            .expected_inputs
            .unwrap()
            .parameters
            .keys()
            .collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(
        closure
            .expected_outputs
            .unwrap()
            .variables
            .keys()
            .collect::<Vec<_>>(),
        ["o0"]
    );
    assert_eq!(lp.spec.unwrap().workflow_id.unwrap(), wf_id);

    let active_req = ActiveLaunchPlanRequest {
        id: Some(NamedEntityIdentifier {
            project: PROJECT.into(),
            domain: DOMAIN.into(),
            name: "app.lp".into(),
            org: String::new(),
        }),
    };
    assert_eq!(
        admin
            .get_active_launch_plan(active_req.clone())
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    admin
        .create_launch_plan(create_launch_plan("app.lp", "v2", &wf_id))
        .await
        .unwrap();
    let activate = |v: &str, state: LaunchPlanState| LaunchPlanUpdateRequest {
        id: Some(id(ResourceType::LaunchPlan, "app.lp", v)),
        state: state as i32,
    };
    admin
        .update_launch_plan(activate("v1", LaunchPlanState::Active))
        .await
        .unwrap();
    let active = admin
        .get_active_launch_plan(active_req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.id.unwrap().version, "v1");
    // Only one active version per name.
    admin
        .update_launch_plan(activate("v2", LaunchPlanState::Active))
        .await
        .unwrap();
    let active = admin
        .get_active_launch_plan(active_req.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(active.id.unwrap().version, "v2");
    let v1 = admin
        .get_launch_plan(get(lp_id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v1.closure.unwrap().state, LaunchPlanState::Inactive as i32);
    admin
        .update_launch_plan(activate("v2", LaunchPlanState::Inactive))
        .await
        .unwrap();
    assert_eq!(
        admin
            .get_active_launch_plan(active_req)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    let lps = admin
        .list_launch_plans(list("app.lp", 10, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lps.launch_plans.len(), 2);
    let wfs = admin
        .list_workflows(list("app.wf", 10, ""))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(wfs.workflows.len(), 1);
    let wf_names = admin
        .list_workflow_ids(ids_request(10))
        .await
        .unwrap()
        .into_inner();
    // app.wf, app.outer, app.parent: a subworkflow shipped in a spec is not registered on its own.
    assert_eq!(wf_names.entities.len(), 3);
    let lp_names = admin
        .list_launch_plan_ids(ids_request(10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        lp_names
            .entities
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["app.lp"]
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;
    let task_id = id(ResourceType::Task, "app.t", "v1");
    admin
        .create_task(create_task("app.t", "v1", "img"))
        .await
        .unwrap();
    admin
        .create_workflow(create_workflow("app.wf", "v1", &task_id))
        .await
        .unwrap();
    let wf_id = id(ResourceType::Workflow, "app.wf", "v1");
    admin
        .create_launch_plan(create_launch_plan("app.wf", "v1", &wf_id))
        .await
        .unwrap();
    admin
        .update_launch_plan(LaunchPlanUpdateRequest {
            id: Some(id(ResourceType::LaunchPlan, "app.wf", "v1")),
            state: LaunchPlanState::Active as i32,
        })
        .await
        .unwrap();
    drop(admin);
    server.stop();

    let server = Sandbox::start_in(dir.path());
    let mut admin = server.admin().await;
    let task = admin
        .get_task(get(task_id.clone()))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        task.closure
            .unwrap()
            .compiled_task
            .unwrap()
            .template
            .unwrap(),
        task_template("app.t", "v1", "img")
    );
    admin.get_workflow(get(wf_id)).await.unwrap();
    let lp = admin
        .get_launch_plan(get(id(ResourceType::LaunchPlan, "app.wf", "v1")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lp.closure.unwrap().state, LaunchPlanState::Active as i32);
    // Re-registering after the restart still compares with the stored digest.
    assert_eq!(
        admin
            .create_task(create_task("app.t", "v1", "img"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_create_task_keeps_every_task() {
    let dir = tempfile::tempdir().unwrap();
    let server = Sandbox::start_in(dir.path());
    let (clients, per_client) = (32, 40);
    let mut joins = Vec::new();
    for c in 0..clients {
        let mut admin = server.admin().await;
        joins.push(tokio::spawn(async move {
            for i in 0..per_client {
                admin
                    .create_task(create_task(&format!("app.t{c}"), &format!("v{i}"), "img"))
                    .await
                    .unwrap();
                // Everyone also re-registers a shared task: exactly one creates it.
                let shared = admin
                    .create_task(create_task("app.shared", "v1", "img"))
                    .await;
                assert!(shared.is_ok() || shared.unwrap_err().code() == Code::AlreadyExists);
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    let mut admin = server.admin().await;
    let ids = admin
        .list_task_ids(ids_request(1000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids.entities.len(), clients + 1);
    for c in 0..clients {
        let tasks = admin
            .list_tasks(list(&format!("app.t{c}"), 1000, ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(tasks.tasks.len(), per_client);
    }
    admin
        .get_task(get(id(ResourceType::Task, "app.t7", "v39")))
        .await
        .unwrap();
    server.stop();
    // The database is consistent after the load.
    let conn = rusqlite::Connection::open(dir.path().join("sandbox.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}
