//! `atrium usage show <user>`: the user's current window (GetUsage's, or CheckUsage's when the
//! answer carries none) and their own time by day.

use atrium_proto::usage::v1::{
    CheckUsageRequest, DayUsage, GetUsageRequest, UsageCheck, UsageInterval, UsageLimit, UsageScope,
};
use serde_json::{Value, json};

use super::ShowArgs;
use super::values::hours;
use crate::args::UserRef;
use crate::commands::Ctx;
use crate::error::CliResult;
use crate::json::{time, time_text};
use crate::output::{Table, print_fields, print_json, yes_no};

pub async fn show(ctx: &mut Ctx, args: ShowArgs) -> CliResult {
    let (user_id, username) = match &args.user {
        UserRef::Id(id) => (id.clone(), None),
        UserRef::Username(_) => {
            let user = ctx.get_user(&args.user).await?;
            (user.id, Some(user.username))
        }
    };
    let request = GetUsageRequest {
        user_id: user_id.clone(),
        days: args.days,
    };
    let summary = ctx
        .usage(request, |mut c, r| async move { c.get_usage(r).await })
        .await?;
    let current = match summary.current {
        Some(current) => current,
        None => {
            let request = CheckUsageRequest {
                user_id: user_id.clone(),
            };
            ctx.usage(request, |mut c, r| async move { c.check_usage(r).await })
                .await?
        }
    };
    let view = View {
        user_id: &user_id,
        username: username.as_deref(),
        check: &current,
        history: &summary.history,
        timezone: &summary.timezone,
    };
    if ctx.json() {
        print_json(&view.json());
        return Ok(());
    }
    print_fields(&view.fields());
    println!();
    view.history_table().print();
    Ok(())
}

/// What `show` prints.
struct View<'a> {
    user_id: &'a str,
    username: Option<&'a str>,
    check: &'a UsageCheck,
    history: &'a [DayUsage],
    timezone: &'a str,
}

pub fn scope_name(value: i32) -> &'static str {
    match UsageScope::try_from(value) {
        Ok(UsageScope::PerUser) => "per_user",
        Ok(UsageScope::PerGroup) => "per_group",
        Ok(UsageScope::Unspecified) | Err(_) => "unspecified",
    }
}

pub fn interval_name(value: i32) -> &'static str {
    match UsageInterval::try_from(value) {
        Ok(UsageInterval::Daily) => "daily",
        Ok(UsageInterval::Weekly) => "weekly",
        Ok(UsageInterval::Monthly) => "monthly",
        Ok(UsageInterval::Total) => "total",
        Ok(UsageInterval::Unspecified) | Err(_) => "unspecified",
    }
}

/// `10 hours weekly, per user` / `2.5 hours in total, shared by the group`.
fn limit_text(limit: &UsageLimit) -> String {
    let window = match UsageInterval::try_from(limit.interval) {
        Ok(UsageInterval::Total) => "in total".to_owned(),
        _ => interval_name(limit.interval).to_owned(),
    };
    let whose = match UsageScope::try_from(limit.scope) {
        Ok(UsageScope::PerGroup) => "shared by the group's members",
        Ok(UsageScope::PerUser) => "per user",
        _ => "unspecified scope",
    };
    format!("{} hours {window}, {whose}", limit.hours)
}

impl View<'_> {
    fn user_text(&self) -> String {
        match self.username {
            Some(name) => format!("{name} ({})", self.user_id),
            None => self.user_id.to_owned(),
        }
    }

    /// The allowance is spent: a limit applies and nothing more may be launched.
    fn spent(&self) -> bool {
        self.check.limited && !self.check.allowed
    }

    fn fields(&self) -> Vec<(&'static str, String)> {
        let c = self.check;
        let Some(limit) = c.limit.as_ref().filter(|_| c.limited) else {
            return vec![
                ("user", self.user_text()),
                (
                    "limit",
                    "none (no usage_limit applies: unmetered)".to_owned(),
                ),
                ("spent", yes_no(false)),
                ("timezone", self.timezone.to_owned()),
            ];
        };
        let group = match (c.group_name.is_empty(), c.group_id.is_empty()) {
            (false, false) => format!("{} ({})", c.group_name, c.group_id),
            (false, true) => c.group_name.clone(),
            _ => c.group_id.clone(),
        };
        let window = if c.window_start.is_none() && c.window_end.is_none() {
            "all time (total: never resets)".to_owned()
        } else {
            format!(
                "{} to {}",
                time_text(c.window_start.as_ref()),
                time_text(c.window_end.as_ref())
            )
        };
        vec![
            ("user", self.user_text()),
            ("limit", limit_text(limit)),
            ("set by group", group),
            ("used", format!("{} h", hours(c.used_seconds))),
            ("remaining", format!("{} h", hours(c.remaining_seconds))),
            ("window", window),
            ("open sessions", c.open_sessions.to_string()),
            ("spent", yes_no(self.spent())),
            ("runs out at", time_text(c.exhausted_at.as_ref())),
            ("summary", c.summary.clone()),
            ("timezone", self.timezone.to_owned()),
        ]
    }

    fn history_table(&self) -> Table {
        let mut table = Table::new(&["DATE", "HOURS"]);
        for day in self.history {
            table.push(vec![day.date.clone(), hours(day.seconds)]);
        }
        table
    }

    fn json(&self) -> Value {
        let c = self.check;
        let limit = c.limit.as_ref().filter(|_| c.limited).map(|l| {
            json!({
                "type": scope_name(l.scope),
                "interval": interval_name(l.interval),
                "hours": l.hours,
            })
        });
        json!({
            "user_id": self.user_id,
            "username": self.username,
            "limited": c.limited,
            "allowed": c.allowed,
            "spent": self.spent(),
            "limit": limit,
            "group_id": c.group_id,
            "group_name": c.group_name,
            "used_seconds": c.used_seconds,
            "remaining_seconds": c.remaining_seconds,
            "window_start": time(c.window_start.as_ref()),
            "window_end": time(c.window_end.as_ref()),
            "open_sessions": c.open_sessions,
            "exhausted_at": time(c.exhausted_at.as_ref()),
            "checked_at": time(c.checked_at.as_ref()),
            "summary": c.summary,
            "timezone": self.timezone,
            "history": self.history.iter().map(|d| json!({
                "date": d.date,
                "seconds": d.seconds,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limited() -> UsageCheck {
        UsageCheck {
            user_id: "u1".into(),
            allowed: false,
            limited: true,
            limit: Some(UsageLimit {
                scope: UsageScope::PerGroup as i32,
                interval: UsageInterval::Weekly as i32,
                hours: 2.5,
            }),
            group_id: "g1".into(),
            group_name: "Students".into(),
            used_seconds: 9000.0,
            remaining_seconds: 0.0,
            window_start: Some(prost_types::Timestamp {
                seconds: 1_736_121_600,
                nanos: 0,
            }),
            window_end: Some(prost_types::Timestamp {
                seconds: 1_736_726_400,
                nanos: 0,
            }),
            open_sessions: 1,
            ..Default::default()
        }
    }

    fn get<'a>(fields: &'a [(&str, String)], key: &str) -> &'a str {
        fields
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn a_spent_group_allowance_says_so() {
        let check = limited();
        let history = [DayUsage {
            date: "2025-01-06".into(),
            seconds: 9000.0,
        }];
        let view = View {
            user_id: "u1",
            username: Some("alice"),
            check: &check,
            history: &history,
            timezone: "UTC",
        };
        let fields = view.fields();
        assert_eq!(get(&fields, "user"), "alice (u1)");
        assert_eq!(
            get(&fields, "limit"),
            "2.5 hours weekly, shared by the group's members"
        );
        assert_eq!(get(&fields, "set by group"), "Students (g1)");
        assert_eq!(get(&fields, "used"), "2.50 h");
        assert_eq!(get(&fields, "remaining"), "0.00 h");
        assert_eq!(
            get(&fields, "window"),
            "2025-01-06T00:00:00Z to 2025-01-13T00:00:00Z"
        );
        assert_eq!(get(&fields, "spent"), "yes");
        assert_eq!(
            view.history_table().render(),
            "DATE        HOURS\n2025-01-06  2.50\n"
        );
        let json = view.json();
        assert_eq!(json["spent"], true);
        assert_eq!(json["limit"]["type"], "per_group");
        assert_eq!(json["limit"]["interval"], "weekly");
        assert_eq!(json["history"][0]["seconds"], 9000.0);
    }

    #[test]
    fn no_limit_is_unmetered_and_never_spent() {
        let check = UsageCheck {
            allowed: true,
            ..Default::default()
        };
        let view = View {
            user_id: "u2",
            username: None,
            check: &check,
            history: &[],
            timezone: "Europe/Berlin",
        };
        let fields = view.fields();
        assert!(get(&fields, "limit").starts_with("none"));
        assert_eq!(get(&fields, "spent"), "no");
        assert_eq!(view.json()["limit"], Value::Null);
        assert_eq!(view.json()["spent"], false);
    }
}
