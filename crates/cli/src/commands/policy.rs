//! `atrium policy ...`: a user's effective policy, where each value came from, and their
//! permissions (policy service).

use atrium_proto::policy::v1::{
    GetEffectivePermissionsRequest, GroupRef as PolicyGroupRef, PolicyExplanation,
    ResolveEffectivePolicyRequest, SettingExplanation,
};
use serde_json::json;

use super::Ctx;
use crate::args::{UserRef, parse_user_ref};
use crate::error::CliResult;
use crate::output::{Table, print_fields, print_json, yes_no};
use crate::policy_json::{self, from_text, overrides_text, value_text};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Where a user's settings come from: each value, the group that supplied it and the
    /// weaker groups it overrode.
    ///
    /// Shows only the settings some member group sets (FROM names the winning group; for a
    /// combined setting such as volume_mapping, every contributing group); --all adds every
    /// other setting at its catalogue default (FROM "default"). The same filter applies to
    /// -o json.
    Explain {
        /// The user (id or username) [default: the caller].
        #[arg(value_parser = parse_user_ref)]
        user: Option<UserRef>,
        /// Also show the settings no member group sets (at their defaults).
        #[arg(long)]
        all: bool,
    },
    /// A user's effective value of every setting.
    Show {
        /// The user (id or username) [default: the caller].
        #[arg(value_parser = parse_user_ref)]
        user: Option<UserRef>,
    },
    /// A user's effective permissions (the union of their groups' grants).
    Permissions {
        /// The user (id or username) [default: the caller].
        #[arg(value_parser = parse_user_ref)]
        user: Option<UserRef>,
    },
}

pub async fn run(ctx: &mut Ctx, command: PolicyCommand) -> CliResult {
    match command {
        PolicyCommand::Explain { user, all } => explain(ctx, user, all).await,
        PolicyCommand::Show { user } => {
            let request = ResolveEffectivePolicyRequest {
                user_id: ctx.user_id_or_caller(user.as_ref()).await?,
            };
            let policy = ctx
                .policy(request, |mut c, r| async move {
                    c.resolve_effective_policy(r).await
                })
                .await?;
            if ctx.json() {
                print_json(&json!({
                    "user_id": policy.user_id,
                    "settings": policy.settings.iter().map(policy_json::effective_setting).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            let mut table = Table::new(&["NAME", "VALUE", "DEFAULT"]);
            for s in &policy.settings {
                table.push(vec![
                    s.name.clone(),
                    value_text(s.value.as_ref()),
                    yes_no(s.is_default),
                ]);
            }
            table.print();
            Ok(())
        }
        PolicyCommand::Permissions { user } => {
            let request = GetEffectivePermissionsRequest {
                user_id: ctx.user_id_or_caller(user.as_ref()).await?,
            };
            let answer = ctx
                .policy(request, |mut c, r| async move {
                    c.get_effective_permissions(r).await
                })
                .await?;
            if ctx.json() {
                print_json(&policy_json::effective_permissions(&answer));
                return Ok(());
            }
            print_fields(&[
                ("user", answer.user_id.clone()),
                ("administrator", yes_no(answer.administrator)),
            ]);
            println!();
            let mut table = Table::new(&["PERMISSION"]);
            for permission in &answer.permissions {
                table.push(vec![permission.clone()]);
            }
            table.print();
            Ok(())
        }
    }
}

async fn explain(ctx: &mut Ctx, user: Option<UserRef>, all: bool) -> CliResult {
    let request = ResolveEffectivePolicyRequest {
        user_id: ctx.user_id_or_caller(user.as_ref()).await?,
    };
    let explanation = ctx
        .policy(request, |mut c, r| async move {
            c.explain_effective_policy(r).await
        })
        .await?;
    let shown: Vec<&SettingExplanation> = shown(&explanation, all).collect();
    if ctx.json() {
        print_json(&json!({
            "user_id": explanation.user_id,
            "groups": explanation.groups.iter().map(policy_json::group_ref).collect::<Vec<_>>(),
            "settings": shown.iter().map(|s| policy_json::setting_explanation(s)).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    println!(
        "groups of {}, strongest first: {}",
        explanation.user_id,
        groups_text(&explanation.groups)
    );
    let mut table = Table::new(&["NAME", "VALUE", "FROM", "OVERRIDES"]);
    for s in &shown {
        table.push(explanation_row(s));
    }
    table.print();
    if shown.is_empty() && !all {
        eprintln!("no group of this user sets any setting; --all shows the defaults");
    }
    Ok(())
}

/// The settings `explain` prints: those a member group sets, or every one with `--all`.
fn shown(explanation: &PolicyExplanation, all: bool) -> impl Iterator<Item = &SettingExplanation> {
    explanation
        .settings
        .iter()
        .filter(move |s| all || !s.is_default)
}

fn explanation_row(s: &SettingExplanation) -> Vec<String> {
    vec![
        s.name.clone(),
        value_text(s.value.as_ref()),
        from_text(s.is_default, &s.supplied_by),
        overrides_text(&s.overridden),
    ]
}

/// `Staff (10), All Users (1000)`.
fn groups_text(groups: &[PolicyGroupRef]) -> String {
    if groups.is_empty() {
        return "(none)".to_owned();
    }
    groups
        .iter()
        .map(|g| format!("{} ({})", g.name, g.priority))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use atrium_proto::policy::v1::{GroupValue, SettingValue, setting_value::Kind};

    use super::*;

    fn gref(name: &str, priority: i32) -> PolicyGroupRef {
        PolicyGroupRef {
            group_id: format!("id-{name}"),
            name: name.into(),
            priority,
        }
    }

    fn boolean(b: bool) -> Option<SettingValue> {
        Some(SettingValue {
            kind: Some(Kind::BoolValue(b)),
        })
    }

    fn explanation() -> PolicyExplanation {
        PolicyExplanation {
            user_id: "u1".into(),
            groups: vec![gref("Staff", 10), gref("All Users", 1000)],
            settings: vec![
                SettingExplanation {
                    name: "allow_kasm_pause".into(),
                    value: boolean(true),
                    is_default: false,
                    supplied_by: vec![gref("Staff", 10)],
                    overridden: vec![GroupValue {
                        group: Some(gref("All Users", 1000)),
                        value: boolean(false),
                    }],
                },
                SettingExplanation {
                    name: "allow_kasm_stop".into(),
                    value: boolean(false),
                    is_default: true,
                    ..Default::default()
                },
                SettingExplanation {
                    name: "session_time_limit".into(),
                    value: None,
                    is_default: true,
                    ..Default::default()
                },
            ],
        }
    }

    #[test]
    fn explain_shows_set_settings_unless_all() {
        let e = explanation();
        let names = |all| shown(&e, all).map(|s| s.name.as_str()).collect::<Vec<_>>();
        assert_eq!(names(false), vec!["allow_kasm_pause"]);
        assert_eq!(
            names(true),
            vec!["allow_kasm_pause", "allow_kasm_stop", "session_time_limit"]
        );
    }

    #[test]
    fn explain_rows_name_the_group_and_what_it_overrode() {
        let e = explanation();
        assert_eq!(
            explanation_row(&e.settings[0]),
            vec!["allow_kasm_pause", "true", "Staff", "All Users=false"]
        );
        assert_eq!(
            explanation_row(&e.settings[1]),
            vec!["allow_kasm_stop", "false", "default", ""]
        );
        assert_eq!(
            explanation_row(&e.settings[2]),
            vec!["session_time_limit", "(not set)", "default", ""]
        );
        assert_eq!(groups_text(&e.groups), "Staff (10), All Users (1000)");
        assert_eq!(groups_text(&[]), "(none)");
    }
}
