//! The tonic service: authenticate, convert, delegate. No logic lives here.

use atrium_proto::policy::v1 as pb;
use atrium_proto::policy::v1::policy_service_server::PolicyService;
use atrium_service_kit::auth::principal;
use tonic::{Request, Response, Status};

use super::{audit, groups, mappings, members, settings, workspaces, zones};
use crate::core::SharedCore;

pub struct PolicyApi {
    core: SharedCore,
}

impl PolicyApi {
    pub fn new(core: SharedCore) -> Self {
        Self { core }
    }
}

async fn assign(
    core: &crate::core::Core,
    p: &atrium_service_kit::auth::Principal,
    r: pb::WorkspaceAssignmentRequest,
) -> atrium_service_kit::ApiResult<pb::WorkspaceAssignmentResponse> {
    workspaces::assign(core, p, r, true).await
}

async fn unassign(
    core: &crate::core::Core,
    p: &atrium_service_kit::auth::Principal,
    r: pb::WorkspaceAssignmentRequest,
) -> atrium_service_kit::ApiResult<pb::WorkspaceAssignmentResponse> {
    workspaces::assign(core, p, r, false).await
}

async fn setting_definitions(
    _: &crate::core::Core,
    _: &atrium_service_kit::auth::Principal,
    _: pb::ListSettingDefinitionsRequest,
) -> atrium_service_kit::ApiResult<pb::ListSettingDefinitionsResponse> {
    Ok(settings::definitions())
}

async fn permission_definitions(
    _: &crate::core::Core,
    _: &atrium_service_kit::auth::Principal,
    _: pb::ListPermissionDefinitionsRequest,
) -> atrium_service_kit::ApiResult<pb::ListPermissionDefinitionsResponse> {
    Ok(groups::definitions())
}

/// Emits the whole impl so `async_trait` sees expanded methods: each RPC authenticates its
/// caller and calls `$f(core, principal, request)`.
macro_rules! policy_service {
    ($($name:ident($req:ty) -> $resp:ty = $f:path;)*) => {
        #[tonic::async_trait]
        impl PolicyService for PolicyApi {
            $(
                async fn $name(&self, request: Request<$req>) -> Result<Response<$resp>, Status> {
                    let principal = principal(&request)?;
                    Ok(Response::new($f(&self.core, &principal, request.into_inner()).await?))
                }
            )*
        }
    };
}

policy_service! {
    create_group(pb::CreateGroupRequest) -> pb::Group = groups::create;
    get_group(pb::GetGroupRequest) -> pb::Group = groups::get;
    update_group(pb::UpdateGroupRequest) -> pb::Group = groups::update;
    delete_group(pb::DeleteGroupRequest) -> pb::DeleteGroupResponse = groups::delete;
    list_groups(pb::ListGroupsRequest) -> pb::ListGroupsResponse = groups::list;
    add_group_member(pb::GroupMemberRequest) -> pb::GroupMembership = members::add;
    remove_group_member(pb::GroupMemberRequest) -> pb::RemoveGroupMemberResponse = members::remove;
    list_group_members(pb::ListGroupMembersRequest) -> pb::ListGroupMembersResponse = members::list_members;
    list_user_groups(pb::ListUserGroupsRequest) -> pb::ListUserGroupsResponse = members::list_user_groups;
    user_created(pb::UserLifecycleRequest) -> pb::UserLifecycleResponse = members::user_created;
    user_deleted(pb::UserLifecycleRequest) -> pb::UserLifecycleResponse = members::user_deleted;
    list_setting_definitions(pb::ListSettingDefinitionsRequest) -> pb::ListSettingDefinitionsResponse = setting_definitions;
    set_group_setting(pb::SetGroupSettingRequest) -> pb::GroupSetting = settings::set;
    unset_group_setting(pb::UnsetGroupSettingRequest) -> pb::UnsetGroupSettingResponse = settings::unset;
    list_group_settings(pb::ListGroupSettingsRequest) -> pb::ListGroupSettingsResponse = settings::list;
    resolve_effective_policy(pb::ResolveEffectivePolicyRequest) -> pb::EffectivePolicy = settings::effective;
    explain_effective_policy(pb::ResolveEffectivePolicyRequest) -> pb::PolicyExplanation = settings::explain;
    list_permission_definitions(pb::ListPermissionDefinitionsRequest) -> pb::ListPermissionDefinitionsResponse = permission_definitions;
    grant_permission(pb::GroupPermissionRequest) -> pb::GroupPermissions = groups::grant;
    revoke_permission(pb::GroupPermissionRequest) -> pb::GroupPermissions = groups::revoke;
    list_group_permissions(pb::ListGroupPermissionsRequest) -> pb::GroupPermissions = groups::list_permissions;
    get_effective_permissions(pb::GetEffectivePermissionsRequest) -> pb::EffectivePermissions = groups::effective_permissions;
    create_workspace(pb::CreateWorkspaceRequest) -> pb::Workspace = workspaces::create;
    get_workspace(pb::GetWorkspaceRequest) -> pb::Workspace = workspaces::get;
    update_workspace(pb::UpdateWorkspaceRequest) -> pb::Workspace = workspaces::update;
    delete_workspace(pb::DeleteWorkspaceRequest) -> pb::DeleteWorkspaceResponse = workspaces::delete;
    list_workspaces(pb::ListWorkspacesRequest) -> pb::ListWorkspacesResponse = workspaces::list;
    assign_workspace(pb::WorkspaceAssignmentRequest) -> pb::WorkspaceAssignmentResponse = assign;
    unassign_workspace(pb::WorkspaceAssignmentRequest) -> pb::WorkspaceAssignmentResponse = unassign;
    list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest) -> pb::ListWorkspacesResponse = workspaces::launchable;
    create_zone(pb::Zone) -> pb::Zone = zones::create_zone;
    update_zone(pb::Zone) -> pb::Zone = zones::update_zone;
    delete_zone(pb::DeleteZoneRequest) -> pb::DeleteZoneResponse = zones::delete_zone;
    list_zones(pb::ListZonesRequest) -> pb::ListZonesResponse = zones::list_zones;
    create_file_mapping(pb::FileMapping) -> pb::FileMapping = mappings::create_file_mapping;
    update_file_mapping(pb::FileMapping) -> pb::FileMapping = mappings::update_file_mapping;
    delete_file_mapping(pb::DeleteFileMappingRequest) -> pb::DeleteFileMappingResponse = mappings::delete_file_mapping;
    list_file_mappings(pb::ListFileMappingsRequest) -> pb::ListFileMappingsResponse = mappings::list_file_mappings;
    resolve_file_mappings(pb::ResolveFileMappingsRequest) -> pb::ResolveFileMappingsResponse = mappings::resolve_file_mappings;
    create_sso_group_mapping(pb::SsoGroupMapping) -> pb::SsoGroupMapping = mappings::create_sso;
    delete_sso_group_mapping(pb::DeleteSsoGroupMappingRequest) -> pb::DeleteSsoGroupMappingResponse = mappings::delete_sso;
    list_sso_group_mappings(pb::ListSsoGroupMappingsRequest) -> pb::ListSsoGroupMappingsResponse = mappings::list_sso;
    apply_sso_login(pb::ApplySsoLoginRequest) -> pb::ApplySsoLoginResponse = mappings::apply_sso_login;
    list_audit_events(pb::ListAuditEventsRequest) -> pb::ListAuditEventsResponse = audit::list;
}
