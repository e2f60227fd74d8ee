//! `flyteidl.service.AdminService`: registration and lookup of tasks, workflows and launch plans,
//! with flyteadmin's semantics (see the module docs of [`super`]). Other methods answer
//! UNIMPLEMENTED, naming the method.
//!
//! Where things happen: `tasks`, `workflows` and `launch_plans` register and look up their kind
//! (`workflows` also compiles a workflow against what is registered), `named_entities` answers
//! the name-level queries, `projects` the projects and domains, `listing` holds the list queries they share, `ids` validates and
//! builds identifiers, `status` maps store failures and re-registrations to gRPC statuses, and
//! `unimplemented` answers the methods the sandbox does not serve. Executions are served by
//! [`super::executions`].

#[macro_use]
mod unimplemented;

mod ids;
mod launch_plans;
mod listing;
mod named_entities;
pub mod projects;
mod status;
mod tasks;
mod workflows;

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::store::Store;
use union_idl::flyteidl::admin::{self, *};
use union_idl::flyteidl::service::admin_service_server::AdminService;

/// The AdminService implementation over the sandbox [`Store`].
#[derive(Debug, Clone)]
pub struct AdminApi {
    store: Arc<Store>,
    executions: Option<Arc<super::executions::Executions>>,
}

impl AdminApi {
    /// An AdminService backed by `store`.
    pub fn new(store: Arc<Store>) -> Self {
        AdminApi {
            store,
            executions: None,
        }
    }

    /// Serve the execution methods (CreateExecution, ...) from `executions`.
    pub fn with_executions(mut self, executions: Arc<super::executions::Executions>) -> Self {
        self.executions = Some(executions);
        self
    }

    fn executions(&self, method: &str) -> Result<&Arc<super::executions::Executions>, Status> {
        self.executions.as_ref().ok_or_else(|| {
            Status::unimplemented(format!(
                "flyteidl.service.AdminService/{method} is not implemented by the union sandbox"
            ))
        })
    }

    /// Run blocking database work off the async workers.
    async fn blocking<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Store) -> Result<T, Status> + Send + 'static,
    {
        crate::status::blocking(&self.store, f).await
    }
}

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn create_task(
        &self,
        request: Request<TaskCreateRequest>,
    ) -> Result<Response<TaskCreateResponse>, Status> {
        tasks::create(self, request).await
    }

    async fn get_task(&self, request: Request<ObjectGetRequest>) -> Result<Response<Task>, Status> {
        tasks::get(self, request).await
    }

    async fn list_task_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        tasks::list_ids(self, request).await
    }

    async fn list_tasks(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<TaskList>, Status> {
        tasks::list(self, request).await
    }

    async fn create_workflow(
        &self,
        request: Request<WorkflowCreateRequest>,
    ) -> Result<Response<WorkflowCreateResponse>, Status> {
        workflows::create(self, request).await
    }

    async fn get_workflow(
        &self,
        request: Request<ObjectGetRequest>,
    ) -> Result<Response<Workflow>, Status> {
        workflows::get(self, request).await
    }

    async fn list_workflow_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        workflows::list_ids(self, request).await
    }

    async fn list_workflows(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<WorkflowList>, Status> {
        workflows::list(self, request).await
    }

    async fn create_launch_plan(
        &self,
        request: Request<LaunchPlanCreateRequest>,
    ) -> Result<Response<LaunchPlanCreateResponse>, Status> {
        launch_plans::create(self, request).await
    }

    async fn get_launch_plan(
        &self,
        request: Request<ObjectGetRequest>,
    ) -> Result<Response<LaunchPlan>, Status> {
        launch_plans::get(self, request).await
    }

    async fn get_active_launch_plan(
        &self,
        request: Request<ActiveLaunchPlanRequest>,
    ) -> Result<Response<LaunchPlan>, Status> {
        launch_plans::get_active(self, request).await
    }

    async fn list_active_launch_plans(
        &self,
        request: Request<ActiveLaunchPlanListRequest>,
    ) -> Result<Response<LaunchPlanList>, Status> {
        launch_plans::list_active(self, request).await
    }

    async fn list_launch_plan_ids(
        &self,
        request: Request<NamedEntityIdentifierListRequest>,
    ) -> Result<Response<NamedEntityIdentifierList>, Status> {
        launch_plans::list_ids(self, request).await
    }

    async fn list_launch_plans(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<LaunchPlanList>, Status> {
        launch_plans::list(self, request).await
    }

    async fn update_launch_plan(
        &self,
        request: Request<LaunchPlanUpdateRequest>,
    ) -> Result<Response<LaunchPlanUpdateResponse>, Status> {
        launch_plans::update(self, request).await
    }

    async fn list_named_entities(
        &self,
        request: Request<NamedEntityListRequest>,
    ) -> Result<Response<NamedEntityList>, Status> {
        named_entities::list(self, request).await
    }

    async fn get_named_entity(
        &self,
        request: Request<NamedEntityGetRequest>,
    ) -> Result<Response<NamedEntity>, Status> {
        named_entities::get(self, request).await
    }

    async fn get_version(
        &self,
        _request: Request<GetVersionRequest>,
    ) -> Result<Response<GetVersionResponse>, Status> {
        Ok(Response::new(GetVersionResponse {
            control_plane_version: Some(Version {
                build: "union-sandbox".to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                build_time: String::new(),
            }),
        }))
    }

    // Executions: see `super::executions`.
    async fn create_execution(
        &self,
        request: Request<ExecutionCreateRequest>,
    ) -> Result<Response<ExecutionCreateResponse>, Status> {
        self.executions("CreateExecution")?
            .create(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_execution(
        &self,
        request: Request<WorkflowExecutionGetRequest>,
    ) -> Result<Response<Execution>, Status> {
        self.executions("GetExecution")?
            .get(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_execution_data(
        &self,
        request: Request<WorkflowExecutionGetDataRequest>,
    ) -> Result<Response<WorkflowExecutionGetDataResponse>, Status> {
        self.executions("GetExecutionData")?
            .get_data(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_executions(
        &self,
        request: Request<ResourceListRequest>,
    ) -> Result<Response<ExecutionList>, Status> {
        self.executions("ListExecutions")?
            .list(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn terminate_execution(
        &self,
        request: Request<ExecutionTerminateRequest>,
    ) -> Result<Response<ExecutionTerminateResponse>, Status> {
        self.executions("TerminateExecution")?
            .terminate(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_node_execution(
        &self,
        request: Request<NodeExecutionGetRequest>,
    ) -> Result<Response<NodeExecution>, Status> {
        self.executions("GetNodeExecution")?
            .get_node(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_node_executions(
        &self,
        request: Request<NodeExecutionListRequest>,
    ) -> Result<Response<NodeExecutionList>, Status> {
        self.executions("ListNodeExecutions")?
            .list_nodes(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_node_execution_data(
        &self,
        request: Request<NodeExecutionGetDataRequest>,
    ) -> Result<Response<NodeExecutionGetDataResponse>, Status> {
        self.executions("GetNodeExecutionData")?
            .get_node_data(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_dynamic_node_workflow(
        &self,
        request: Request<GetDynamicNodeWorkflowRequest>,
    ) -> Result<Response<DynamicNodeWorkflowResponse>, Status> {
        self.executions("GetDynamicNodeWorkflow")?
            .get_dynamic_node_workflow(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_task_executions(
        &self,
        request: Request<TaskExecutionListRequest>,
    ) -> Result<Response<TaskExecutionList>, Status> {
        self.executions("ListTaskExecutions")?
            .list_tasks(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_task_execution(
        &self,
        request: Request<TaskExecutionGetRequest>,
    ) -> Result<Response<TaskExecution>, Status> {
        self.executions("GetTaskExecution")?
            .get_task(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_task_execution_data(
        &self,
        request: Request<TaskExecutionGetDataRequest>,
    ) -> Result<Response<TaskExecutionGetDataResponse>, Status> {
        self.executions("GetTaskExecutionData")?
            .get_task_data(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn relaunch_execution(
        &self,
        request: Request<ExecutionRelaunchRequest>,
    ) -> Result<Response<ExecutionCreateResponse>, Status> {
        self.executions("RelaunchExecution")?
            .relaunch(request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_projects(
        &self,
        request: Request<ProjectListRequest>,
    ) -> Result<Response<Projects>, Status> {
        projects::list(self, request).await
    }

    async fn get_project(
        &self,
        request: Request<ProjectGetRequest>,
    ) -> Result<Response<Project>, Status> {
        projects::get(self, request).await
    }

    async fn get_domains(
        &self,
        request: Request<GetDomainRequest>,
    ) -> Result<Response<GetDomainsResponse>, Status> {
        Ok(projects::get_domains(request))
    }

    unimplemented_methods! {
        recover_execution(ExecutionRecoverRequest) -> ExecutionCreateResponse = "RecoverExecution";
        update_execution(ExecutionUpdateRequest) -> ExecutionUpdateResponse = "UpdateExecution";
        list_node_executions_for_task(NodeExecutionForTaskListRequest) -> NodeExecutionList = "ListNodeExecutionsForTask";
        register_project(ProjectRegisterRequest) -> ProjectRegisterResponse = "RegisterProject";
        update_project(Project) -> ProjectUpdateResponse = "UpdateProject";
        create_workflow_event(WorkflowExecutionEventRequest) -> WorkflowExecutionEventResponse = "CreateWorkflowEvent";
        create_node_event(NodeExecutionEventRequest) -> NodeExecutionEventResponse = "CreateNodeEvent";
        create_task_event(TaskExecutionEventRequest) -> TaskExecutionEventResponse = "CreateTaskEvent";
        update_project_domain_attributes(ProjectDomainAttributesUpdateRequest) -> ProjectDomainAttributesUpdateResponse = "UpdateProjectDomainAttributes";
        get_project_domain_attributes(ProjectDomainAttributesGetRequest) -> ProjectDomainAttributesGetResponse = "GetProjectDomainAttributes";
        delete_project_domain_attributes(ProjectDomainAttributesDeleteRequest) -> ProjectDomainAttributesDeleteResponse = "DeleteProjectDomainAttributes";
        update_project_attributes(ProjectAttributesUpdateRequest) -> ProjectAttributesUpdateResponse = "UpdateProjectAttributes";
        get_project_attributes(ProjectAttributesGetRequest) -> ProjectAttributesGetResponse = "GetProjectAttributes";
        delete_project_attributes(ProjectAttributesDeleteRequest) -> ProjectAttributesDeleteResponse = "DeleteProjectAttributes";
        update_workflow_attributes(WorkflowAttributesUpdateRequest) -> WorkflowAttributesUpdateResponse = "UpdateWorkflowAttributes";
        get_workflow_attributes(WorkflowAttributesGetRequest) -> WorkflowAttributesGetResponse = "GetWorkflowAttributes";
        delete_workflow_attributes(WorkflowAttributesDeleteRequest) -> WorkflowAttributesDeleteResponse = "DeleteWorkflowAttributes";
        list_matchable_attributes(ListMatchableAttributesRequest) -> ListMatchableAttributesResponse = "ListMatchableAttributes";
        update_named_entity(NamedEntityUpdateRequest) -> NamedEntityUpdateResponse = "UpdateNamedEntity";
        get_description_entity(ObjectGetRequest) -> DescriptionEntity = "GetDescriptionEntity";
        list_description_entities(DescriptionEntityListRequest) -> DescriptionEntityList = "ListDescriptionEntities";
        get_execution_metrics(WorkflowExecutionGetMetricsRequest) -> WorkflowExecutionGetMetricsResponse = "GetExecutionMetrics";
    }
}
