//! Queries behind the last-administrator guard.

use atrium_service_kit::ApiResult;
use chrono::Utc;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::Repo;
use crate::entity::user;

impl Repo {
    /// Ids of active users (not locked, not disabled) other than `except`, by id after `after`;
    /// with `admins_only`, only bootstrap administrators (`is_admin`).
    pub async fn active_admin_ids(
        &self,
        except: &str,
        after: Option<&str>,
        limit: u64,
        admins_only: bool,
    ) -> ApiResult<Vec<String>> {
        // An automatic lockout that has run out no longer counts as locked.
        let unlocked = Condition::any()
            .add(user::Column::Locked.eq(false))
            .add(user::Column::LockedUntil.lte(Utc::now()));
        let mut query = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .filter(user::Column::Id.ne(except))
            .filter(user::Column::Disabled.eq(false))
            .filter(unlocked)
            .order_by_asc(user::Column::Id)
            .limit(limit);
        if admins_only {
            query = query.filter(user::Column::IsAdmin.eq(true));
        }
        if let Some(after) = after {
            query = query.filter(user::Column::Id.gt(after));
        }
        Ok(query.into_tuple().all(&self.db).await?)
    }
}
