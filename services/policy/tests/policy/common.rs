//! What every scenario shares: starting a server, making users, groups and clients, reading
//! effective settings, and asserting on gRPC outcomes.

pub use atrium_policy::core::{ADMINISTRATORS_ID, ALL_USERS_ID};
pub use atrium_policy::testing::Client;
use atrium_policy::testing::TestPolicy;
pub use atrium_proto::common::v1::PageRequest;
pub use atrium_proto::policy::v1 as pb;
pub use atrium_proto::policy::v1::setting_value::Kind;
pub use atrium_service_kit::testing::Backend;
use sea_orm::{ConnectionTrait, Database, Statement};
pub use tonic::Code;

/// Generates `mod sqlite` and `mod postgres`, each with one `#[tokio::test]` per named scenario
/// calling `super::<scenario>(backend)`.
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Sqlite).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Backend::Postgres).await;
                }
            )+
        }
    };
}
pub(crate) use both_backends;

/// A running server and a client acting as an administrator (a member of Administrators).
pub struct Env {
    pub server: TestPolicy,
    pub admin: Client,
    pub admin_id: String,
}

impl Env {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    pub async fn start_with(
        backend: Backend,
        tweak: impl FnOnce(&mut atrium_policy::PolicyConfig),
    ) -> Self {
        let server = TestPolicy::start_with(backend, tweak)
            .await
            .expect("start policy");
        let (admin_id, admin) = server.new_user(true).await.expect("administrator");
        Self {
            server,
            admin,
            admin_id,
        }
    }

    pub fn admin(&self) -> Client {
        self.admin.clone()
    }

    /// A client that is identity, proven by its certificate (the kit's service table decides
    /// what it may call).
    pub async fn service(&self) -> Client {
        self.server.service().await.expect("service client")
    }

    pub async fn anonymous(&self) -> Client {
        self.server.client(None).await.expect("anonymous client")
    }

    /// A new plain user (announced; member of All Users only) and a client acting as them.
    pub async fn user(&self) -> (String, Client) {
        self.server.new_user(false).await.expect("new user")
    }

    pub async fn as_user(&self, user_id: &str) -> Client {
        self.server.as_user(user_id).await.expect("user client")
    }

    pub async fn group(&self, name: &str, priority: i32) -> pb::Group {
        self.admin()
            .create_group(pb::CreateGroupRequest {
                name: name.into(),
                description: format!("{name} for tests"),
                priority,
            })
            .await
            .must()
    }

    pub async fn get_group(&self, group_id: &str) -> Reply<pb::Group> {
        self.admin().get_group(group_by_id(group_id)).await
    }

    pub async fn add_member(&self, group_id: &str, user_id: &str) -> pb::GroupMembership {
        self.admin()
            .add_group_member(member(group_id, user_id))
            .await
            .must()
    }

    pub async fn set_priority(&self, group_id: &str, priority: i32) -> pb::Group {
        self.admin()
            .update_group(pb::UpdateGroupRequest {
                group_id: group_id.into(),
                priority: Some(priority),
                ..Default::default()
            })
            .await
            .must()
    }

    pub async fn set(&self, group_id: &str, name: &str, kind: Kind) -> pb::GroupSetting {
        self.try_set(group_id, name, kind).await.must()
    }

    pub async fn try_set(&self, group_id: &str, name: &str, kind: Kind) -> Reply<pb::GroupSetting> {
        self.admin()
            .set_group_setting(pb::SetGroupSettingRequest {
                group_id: group_id.into(),
                name: name.into(),
                value: Some(pb::SettingValue { kind: Some(kind) }),
                raw_value: String::new(),
            })
            .await
    }

    pub async fn try_set_raw(
        &self,
        group_id: &str,
        name: &str,
        raw: &str,
    ) -> Reply<pb::GroupSetting> {
        self.admin()
            .set_group_setting(pb::SetGroupSettingRequest {
                group_id: group_id.into(),
                name: name.into(),
                value: None,
                raw_value: raw.into(),
            })
            .await
    }

    pub async fn unset(&self, group_id: &str, name: &str) -> bool {
        self.admin()
            .unset_group_setting(pb::UnsetGroupSettingRequest {
                group_id: group_id.into(),
                name: name.into(),
            })
            .await
            .must()
            .removed
    }

    /// The group's stored settings, name → value.
    pub async fn group_settings(&self, group_id: &str) -> Vec<(String, Option<Kind>)> {
        self.admin()
            .list_group_settings(pb::ListGroupSettingsRequest {
                group_id: group_id.into(),
            })
            .await
            .must()
            .settings
            .into_iter()
            .map(|s| (s.name, kind(&s.value)))
            .collect()
    }

    /// The user's effective policy, as the administrator reads it.
    pub async fn effective(&self, user_id: &str) -> pb::EffectivePolicy {
        self.admin()
            .resolve_effective_policy(resolve_for(user_id))
            .await
            .must()
    }

    /// The effective value of one setting for the user (`None`: not set).
    pub async fn value(&self, user_id: &str, name: &str) -> Option<Kind> {
        let policy = self.effective(user_id).await;
        kind(&setting(&policy, name).value)
    }

    pub async fn explain(&self, user_id: &str) -> pb::PolicyExplanation {
        self.admin()
            .explain_effective_policy(resolve_for(user_id))
            .await
            .must()
    }

    pub async fn grant(&self, group_id: &str, permission: &str) -> pb::GroupPermissions {
        self.admin()
            .grant_permission(permission_request(group_id, permission))
            .await
            .must()
    }

    /// The ids of the user's groups, strongest first, as the administrator reads them.
    pub async fn user_groups(&self, user_id: &str) -> Vec<String> {
        ids(&self
            .admin()
            .list_user_groups(pb::ListUserGroupsRequest {
                user_id: user_id.into(),
                page: None,
            })
            .await
            .must()
            .groups)
    }

    /// A workspace with sane defaults, enabled, created by the administrator.
    pub async fn workspace(&self, image: &str, assign_to_all_users: Option<bool>) -> pb::Workspace {
        self.admin()
            .create_workspace(pb::CreateWorkspaceRequest {
                workspace: Some(workspace(image)),
                assign_to_all_users,
            })
            .await
            .must()
    }

    /// The ids of the workspaces the user may launch (as the administrator reads them).
    pub async fn launchable(&self, user_id: &str) -> Vec<String> {
        self.admin()
            .list_launchable_workspaces(pb::ListLaunchableWorkspacesRequest {
                user_id: user_id.into(),
            })
            .await
            .must()
            .workspaces
            .into_iter()
            .map(|w| w.id)
            .collect()
    }

    /// `SELECT COUNT(*) FROM <table> WHERE <column> = '<value>'`, straight on the database.
    pub async fn count(&self, table: &str, column: &str, value: &str) -> i64 {
        assert!(
            value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "test ids only: {value}"
        );
        let db = Database::connect(self.server.database_url())
            .await
            .expect("connect to the test database");
        let query = format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{value}'");
        let rows = db
            .query_all_raw(Statement::from_string(db.get_database_backend(), query))
            .await
            .expect("count query");
        db.close().await.ok();
        rows.first()
            .expect("one row")
            .try_get_by_index::<i64>(0)
            .expect("a count")
    }
}

pub fn group_by_id(group_id: &str) -> pb::GetGroupRequest {
    pb::GetGroupRequest {
        key: Some(pb::get_group_request::Key::GroupId(group_id.into())),
    }
}

pub fn group_by_name(name: &str) -> pb::GetGroupRequest {
    pb::GetGroupRequest {
        key: Some(pb::get_group_request::Key::Name(name.into())),
    }
}

pub fn member(group_id: &str, user_id: &str) -> pb::GroupMemberRequest {
    pb::GroupMemberRequest {
        group_id: group_id.into(),
        user_id: user_id.into(),
    }
}

pub fn resolve_for(user_id: &str) -> pb::ResolveEffectivePolicyRequest {
    pb::ResolveEffectivePolicyRequest {
        user_id: user_id.into(),
    }
}

pub fn permission_request(group_id: &str, permission: &str) -> pb::GroupPermissionRequest {
    pb::GroupPermissionRequest {
        group_id: group_id.into(),
        permission: permission.into(),
    }
}

pub fn page(size: u32, token: &str) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: size,
        page_token: token.into(),
    })
}

/// An enabled workspace for `image` with nothing else set.
pub fn workspace(image: &str) -> pb::Workspace {
    pb::Workspace {
        name: image.into(),
        friendly_name: format!("{image} desktop"),
        enabled: true,
        ..Default::default()
    }
}

/// The named setting of an effective policy.
#[track_caller]
pub fn setting<'a>(policy: &'a pb::EffectivePolicy, name: &str) -> &'a pb::EffectiveSetting {
    policy
        .settings
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} is in the effective policy"))
}

/// The named setting of an explanation.
#[track_caller]
pub fn explained<'a>(
    explanation: &'a pb::PolicyExplanation,
    name: &str,
) -> &'a pb::SettingExplanation {
    explanation
        .settings
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} is in the explanation"))
}

pub fn kind(value: &Option<pb::SettingValue>) -> Option<Kind> {
    value.as_ref().and_then(|v| v.kind.clone())
}

/// A JSON setting value, parsed (so key order and spacing don't matter).
#[track_caller]
pub fn json_of(kind: &Option<Kind>) -> serde_json::Value {
    match kind {
        Some(Kind::JsonValue(text)) => serde_json::from_str(text).expect("JSON text"),
        other => panic!("expected a JSON value, got {other:?}"),
    }
}

pub fn ids(groups: &[pb::Group]) -> Vec<String> {
    groups.iter().map(|g| g.id.clone()).collect()
}

pub fn ref_ids(groups: &[pb::GroupRef]) -> Vec<String> {
    groups.iter().map(|g| g.group_id.clone()).collect()
}

/// A user id that was never announced.
pub fn stranger() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

pub use atrium_service_kit::testing::{Outcome, Reply};
