//! The gRPC API (`atrium.usage.v1.UsageService`): converts and validates requests, checks the
//! caller, then calls the use cases in `core`.
//!
//! Who may do what: only the session-manager delivers events; the session-manager checks
//! anyone's allowance; a user reads their own usage; `reports.view` reads anyone's usage and
//! the reports (and the rates); `billing.modify` sets and deletes rates.

use std::collections::BTreeMap;

use atrium_proto::usage::v1 as pb;
use atrium_proto::usage::v1::usage_service_server::UsageService;
use atrium_service_kit::auth::permissions::{BILLING_MODIFY, REPORTS_VIEW};
use atrium_service_kit::auth::{Principal, Scope as TokenScope, ServiceId, principal};
use atrium_service_kit::paging::Page;
use atrium_service_kit::validate::{self, from_timestamp};
use atrium_service_kit::{ApiError, ApiResult};
use chrono::{DateTime, TimeZone, Utc};
use tonic::{Request, Response, Status};

use crate::core::{By, Check, Core, SharedCore, Tally};
use crate::entity::workspace_rate;
use crate::ledger::Kind;
use crate::peers::Scope;
use crate::store::NewEvent;
use crate::window::Interval;

/// Events per IngestEvents call.
pub const MAX_BATCH: usize = 5000;
/// Days of history per GetUsage call.
const MAX_HISTORY_DAYS: u32 = 366;
/// The longest report period.
const MAX_REPORT_DAYS: i64 = 3660;

pub struct UsageApi {
    core: SharedCore,
}

impl UsageApi {
    pub fn new(core: SharedCore) -> Self {
        Self { core }
    }
}

fn ts(ms: i64) -> Option<prost_types::Timestamp> {
    DateTime::<Utc>::from_timestamp_millis(ms).map(validate::timestamp)
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// Requires `permission` of a user or an API key; services hold none here.
async fn require(core: &Core, caller: &Principal, permission: &str) -> ApiResult<()> {
    match caller {
        Principal::User(u) if u.scope == TokenScope::Full => {
            if core.peers.permissions(&u.user_id).await?.holds(permission) {
                Ok(())
            } else {
                Err(ApiError::PermissionDenied(format!(
                    "this needs the {permission} permission"
                )))
            }
        }
        Principal::User(_) => Err(ApiError::PermissionDenied("finish signing in first".into())),
        Principal::ApiKey(key) => key.require(permission),
        Principal::Service(s) => Err(ApiError::PermissionDenied(format!(
            "the {s} service may not do this"
        ))),
    }
}

/// The user whose usage is asked for: the caller themselves, or anyone with reports.view.
/// The user whose usage `caller` asks for: `raw`, or the signed-in caller when it is empty.
async fn readable_user(core: &Core, caller: &Principal, raw: &str) -> ApiResult<String> {
    let raw = match caller {
        Principal::User(u) if raw.trim().is_empty() => u.user_id.as_str(),
        _ => raw,
    };
    let user_id = validate::uuid("user_id", raw)?;
    if let Principal::User(u) = caller
        && u.scope == TokenScope::Full
        && u.user_id == user_id
    {
        return Ok(user_id);
    }
    require(core, caller, REPORTS_VIEW).await?;
    core.peers.require_user("user_id", &user_id).await?;
    Ok(user_id)
}

fn to_event(i: usize, e: pb::SessionEvent) -> ApiResult<NewEvent> {
    let field = |name: &str| format!("events[{i}].{name}");
    let kind = Kind::parse(&e.kind).ok_or_else(|| {
        ApiError::invalid(
            field("kind"),
            format!(
                "unknown kind {:?} (created, running, paused, resumed, stopped, deleted, failed or lost)",
                e.kind
            ),
        )
    })?;
    let at =
        e.at.as_ref()
            .ok_or_else(|| ApiError::invalid(field("at"), "is required"))?;
    let at = from_timestamp(&field("at"), at)?;
    // A session's time is split by day: a time decades away would make one event cost
    // millions of day rows.
    let now = chrono::Utc::now();
    if at < earliest() || at > now + chrono::Duration::days(1) {
        return Err(ApiError::invalid(
            field("at"),
            "must be between the year 2000 and a day from now",
        ));
    }
    let group_ids = e
        .group_ids
        .iter()
        .enumerate()
        .map(|(j, g)| validate::uuid(&field(&format!("group_ids[{j}]")), g))
        .collect::<ApiResult<Vec<_>>>()?;
    let optional_id = |name: &str, raw: &str| -> ApiResult<String> {
        if raw.is_empty() {
            Ok(String::new())
        } else {
            validate::uuid(&field(name), raw)
        }
    };
    Ok(NewEvent {
        id: validate::uuid(&field("id"), &e.id)?,
        session_id: validate::uuid(&field("session_id"), &e.session_id)?,
        kind,
        at_ms: at.timestamp_millis(),
        user_id: validate::uuid(&field("user_id"), &e.user_id)?,
        username: validate::text(&field("username"), &e.username, 255)?,
        workspace_id: optional_id("workspace_id", &e.workspace_id)?,
        agent_id: validate::text(&field("agent_id"), &e.agent_id, 255)?,
        zone_id: validate::text(&field("zone_id"), &e.zone_id, 255)?,
        group_ids,
    })
}

fn check_to_proto(check: &Check) -> pb::UsageCheck {
    let limit = check.limit.as_ref();
    pb::UsageCheck {
        user_id: check.user_id.clone(),
        allowed: check.allowed,
        limited: limit.is_some(),
        limit: limit.map(|l| pb::UsageLimit {
            scope: match l.scope {
                Scope::PerUser => pb::UsageScope::PerUser,
                Scope::PerGroup => pb::UsageScope::PerGroup,
            }
            .into(),
            interval: match l.interval {
                Interval::Daily => pb::UsageInterval::Daily,
                Interval::Weekly => pb::UsageInterval::Weekly,
                Interval::Monthly => pb::UsageInterval::Monthly,
                Interval::Total => pb::UsageInterval::Total,
            }
            .into(),
            hours: l.hours,
        }),
        group_id: limit.map(|l| l.group_id.clone()).unwrap_or_default(),
        group_name: limit.map(|l| l.group_name.clone()).unwrap_or_default(),
        used_seconds: seconds(check.used_ms),
        remaining_seconds: seconds(check.remaining_ms),
        window_start: check.window.and_then(|w| ts(w.start_ms)),
        window_end: check.window.and_then(|w| ts(w.end_ms)),
        open_sessions: check.open_sessions,
        exhausted_at: check.exhausted_at_ms.and_then(ts),
        checked_at: ts(check.checked_at_ms),
        summary: check.summary(),
    }
}

/// A report row with costs from the rates.
fn priced(
    key: String,
    tally: &Tally,
    rates: &BTreeMap<String, workspace_rate::Model>,
) -> pb::UsageReportRow {
    let mut costs: BTreeMap<String, f64> = BTreeMap::new();
    let mut unpriced = 0i64;
    for (workspace, ms) in &tally.by_workspace {
        match rates.get(workspace) {
            Some(rate) => {
                *costs.entry(rate.currency.clone()).or_default() +=
                    *ms as f64 / 3_600_000.0 * rate.per_hour;
            }
            None => unpriced += ms,
        }
    }
    pb::UsageReportRow {
        key,
        label: tally.label.clone(),
        seconds: seconds(tally.ms),
        sessions: tally.sessions,
        costs: costs
            .into_iter()
            .map(|(currency, amount)| pb::Cost {
                currency,
                amount: (amount * 10_000.0).round() / 10_000.0,
            })
            .collect(),
        unpriced_seconds: seconds(unpriced),
    }
}

/// The earliest time the ledger takes: 2000-01-01 UTC.
fn earliest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn report_range(req: &pb::UsageReportRequest, now_ms: i64) -> ApiResult<(i64, i64)> {
    let from = req
        .from
        .as_ref()
        .ok_or_else(|| ApiError::invalid("from", "is required"))?;
    let from = from_timestamp("from", from)?.timestamp_millis();
    let to = match &req.to {
        Some(t) => from_timestamp("to", t)?.timestamp_millis(),
        None => now_ms,
    };
    if from < earliest().timestamp_millis() {
        return Err(ApiError::invalid(
            "from",
            "must be in the year 2000 or later",
        ));
    }
    if to <= from {
        return Err(ApiError::invalid("to", "must be after from"));
    }
    if to - from > MAX_REPORT_DAYS * 86_400_000 {
        return Err(ApiError::invalid(
            "to",
            format!("the period may span at most {MAX_REPORT_DAYS} days"),
        ));
    }
    if from > now_ms {
        return Err(ApiError::invalid("from", "must not be in the future"));
    }
    Ok((from, to))
}

fn rate_to_proto(rate: &workspace_rate::Model) -> pb::WorkspaceRate {
    pb::WorkspaceRate {
        workspace_id: rate.workspace_id.clone(),
        per_hour: rate.per_hour,
        currency: rate.currency.clone(),
    }
}

impl UsageApi {
    async fn ingest_events(
        &self,
        caller: Principal,
        req: pb::IngestEventsRequest,
    ) -> ApiResult<pb::IngestEventsResponse> {
        if !matches!(caller, Principal::Service(ServiceId::SessionManager)) {
            return Err(ApiError::PermissionDenied(
                "only the session-manager delivers session events".into(),
            ));
        }
        if req.events.len() > MAX_BATCH {
            return Err(ApiError::invalid(
                "events",
                format!("at most {MAX_BATCH} per call"),
            ));
        }
        let events = req
            .events
            .into_iter()
            .enumerate()
            .map(|(i, e)| to_event(i, e))
            .collect::<ApiResult<Vec<_>>>()?;
        let outcome = self.core.ingest(events).await?;
        Ok(pb::IngestEventsResponse {
            accepted: outcome.accepted,
            duplicates: outcome.duplicates,
        })
    }

    async fn check_usage(
        &self,
        caller: Principal,
        req: pb::CheckUsageRequest,
    ) -> ApiResult<pb::UsageCheck> {
        let user_id = if matches!(caller, Principal::Service(ServiceId::SessionManager)) {
            validate::uuid("user_id", &req.user_id)?
        } else {
            readable_user(&self.core, &caller, &req.user_id).await?
        };
        let check = self.core.check(&user_id, Core::now_ms()).await?;
        Ok(check_to_proto(&check))
    }

    async fn get_usage(
        &self,
        caller: Principal,
        req: pb::GetUsageRequest,
    ) -> ApiResult<pb::UsageSummary> {
        let user_id = readable_user(&self.core, &caller, &req.user_id).await?;
        let days = match req.days {
            0 => 30,
            n if n > MAX_HISTORY_DAYS => {
                return Err(ApiError::invalid(
                    "days",
                    format!("must be at most {MAX_HISTORY_DAYS}"),
                ));
            }
            n => n,
        };
        let now = Core::now_ms();
        let check = self.core.check(&user_id, now).await?;
        let history = self.core.history(&user_id, days, now).await?;
        Ok(pb::UsageSummary {
            current: Some(check_to_proto(&check)),
            history: history
                .into_iter()
                .map(|(day, ms)| pb::DayUsage {
                    date: day.format("%Y-%m-%d").to_string(),
                    seconds: seconds(ms),
                })
                .collect(),
            timezone: self.core.store.timezone().name().to_owned(),
        })
    }

    async fn usage_report(
        &self,
        caller: Principal,
        req: pb::UsageReportRequest,
    ) -> ApiResult<pb::UsageReportResponse> {
        let by = match pb::ReportBy::try_from(req.by) {
            Ok(pb::ReportBy::User) => By::User,
            Ok(pb::ReportBy::Group) => By::Group,
            Ok(pb::ReportBy::Workspace) => By::Workspace,
            Ok(pb::ReportBy::Zone) => By::Zone,
            _ => {
                return Err(ApiError::invalid(
                    "by",
                    "is required: user, group, workspace or zone",
                ));
            }
        };
        let now = Core::now_ms();
        let (from, to) = report_range(&req, now)?;
        let page = Page::from_request(req.page.as_ref())?;
        require(&self.core, &caller, REPORTS_VIEW).await?;
        let tallies = self.core.report(by, from, to, now).await?;
        let rates: BTreeMap<String, workspace_rate::Model> = self
            .core
            .store
            .rates()
            .await?
            .into_iter()
            .map(|r| (r.workspace_id.clone(), r))
            .collect();
        let mut total = Tally::default();
        for tally in tallies.values() {
            total.ms += tally.ms;
            total.sessions += tally.sessions;
            for (w, ms) in &tally.by_workspace {
                *total.by_workspace.entry(w.clone()).or_default() += ms;
            }
        }
        let rows: Vec<pb::UsageReportRow> = tallies
            .iter()
            .filter(|(key, _)| page.after.as_ref().is_none_or(|after| *key > after))
            .take(usize::try_from(page.fetch_limit()).unwrap_or(usize::MAX))
            .map(|(key, tally)| priced(key.clone(), tally, &rates))
            .collect();
        let (rows, page) = page.finish(rows, |r| r.key.clone());
        Ok(pb::UsageReportResponse {
            rows,
            total: Some(priced(String::new(), &total, &rates)),
            page: Some(page),
            from: ts(from),
            to: ts(to),
        })
    }

    async fn set_workspace_rate(
        &self,
        caller: Principal,
        req: pb::WorkspaceRate,
    ) -> ApiResult<pb::WorkspaceRate> {
        let workspace_id = validate::uuid("workspace_id", &req.workspace_id)?;
        if !req.per_hour.is_finite() || req.per_hour <= 0.0 || req.per_hour > 1_000_000.0 {
            return Err(ApiError::invalid(
                "per_hour",
                format!(
                    "must be greater than 0 and at most 1000000, got {}",
                    req.per_hour
                ),
            ));
        }
        let currency = req.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ApiError::invalid(
                "currency",
                "must be a three-letter ISO 4217 code such as EUR or USD",
            ));
        }
        require(&self.core, &caller, BILLING_MODIFY).await?;
        self.core
            .peers
            .require_workspace("workspace_id", &workspace_id)
            .await?;
        let rate = workspace_rate::Model {
            workspace_id,
            per_hour: req.per_hour,
            currency,
            updated_ms: Core::now_ms(),
        };
        self.core.store.set_rate(rate.clone()).await?;
        tracing::info!(actor = %caller.actor(), workspace_id = %rate.workspace_id, per_hour = rate.per_hour, currency = %rate.currency, "workspace rate set");
        Ok(rate_to_proto(&rate))
    }

    async fn delete_workspace_rate(
        &self,
        caller: Principal,
        req: pb::DeleteWorkspaceRateRequest,
    ) -> ApiResult<pb::DeleteWorkspaceRateResponse> {
        let workspace_id = validate::uuid("workspace_id", &req.workspace_id)?;
        require(&self.core, &caller, BILLING_MODIFY).await?;
        if !self.core.store.delete_rate(&workspace_id).await? {
            return Err(ApiError::not_found(format!(
                "rate for workspace {workspace_id}"
            )));
        }
        tracing::info!(actor = %caller.actor(), %workspace_id, "workspace rate deleted");
        Ok(pb::DeleteWorkspaceRateResponse {})
    }

    async fn list_workspace_rates(
        &self,
        caller: Principal,
    ) -> ApiResult<pb::ListWorkspaceRatesResponse> {
        if require(&self.core, &caller, REPORTS_VIEW).await.is_err() {
            require(&self.core, &caller, BILLING_MODIFY).await?;
        }
        Ok(pb::ListWorkspaceRatesResponse {
            rates: self
                .core
                .store
                .rates()
                .await?
                .iter()
                .map(rate_to_proto)
                .collect(),
        })
    }
}

#[tonic::async_trait]
impl UsageService for UsageApi {
    async fn ingest_events(
        &self,
        request: Request<pb::IngestEventsRequest>,
    ) -> Result<Response<pb::IngestEventsResponse>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.ingest_events(caller, request.into_inner()).await?,
        ))
    }

    async fn check_usage(
        &self,
        request: Request<pb::CheckUsageRequest>,
    ) -> Result<Response<pb::UsageCheck>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.check_usage(caller, request.into_inner()).await?,
        ))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::UsageSummary>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.get_usage(caller, request.into_inner()).await?,
        ))
    }

    async fn usage_report(
        &self,
        request: Request<pb::UsageReportRequest>,
    ) -> Result<Response<pb::UsageReportResponse>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.usage_report(caller, request.into_inner()).await?,
        ))
    }

    async fn set_workspace_rate(
        &self,
        request: Request<pb::WorkspaceRate>,
    ) -> Result<Response<pb::WorkspaceRate>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.set_workspace_rate(caller, request.into_inner())
                .await?,
        ))
    }

    async fn delete_workspace_rate(
        &self,
        request: Request<pb::DeleteWorkspaceRateRequest>,
    ) -> Result<Response<pb::DeleteWorkspaceRateResponse>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(
            self.delete_workspace_rate(caller, request.into_inner())
                .await?,
        ))
    }

    async fn list_workspace_rates(
        &self,
        request: Request<pb::ListWorkspaceRatesRequest>,
    ) -> Result<Response<pb::ListWorkspaceRatesResponse>, Status> {
        let caller = principal(&request)?;
        Ok(Response::new(self.list_workspace_rates(caller).await?))
    }
}
