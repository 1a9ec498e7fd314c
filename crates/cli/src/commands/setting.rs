//! `atrium setting ...`: group settings and the settings catalogue (policy service).

use atrium_proto::policy::v1::{
    ListGroupSettingsRequest, ListSettingDefinitionsRequest, SetGroupSettingRequest,
    UnsetGroupSettingRequest,
};
use serde_json::json;

use super::Ctx;
use crate::args::{GroupRef, parse_group_ref};
use crate::error::CliResult;
use crate::json::time_text;
use crate::output::{Table, print_json};
use crate::policy_json::{self, type_text, value_text};

#[derive(Debug, clap::Subcommand)]
pub enum SettingCommand {
    /// Set a setting on a group. The value is text, read by the setting's type: true/false,
    /// 3600, 1.5, a string, an enum value, or a JSON document ('{"...": ...}').
    Set {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The setting's name (or an alias); see `atrium setting catalogue`.
        name: String,
        /// The value as text (`-` and leading dashes are taken as they are).
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Remove a setting from a group (its members then get it from weaker groups or the
    /// default).
    Unset {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
        /// The setting's name (or an alias).
        name: String,
    },
    /// List the settings a group sets.
    List {
        /// The group (id or name).
        #[arg(value_parser = parse_group_ref)]
        group: GroupRef,
    },
    /// Every setting there is: its type, default and meaning.
    Catalogue,
}

pub async fn run(ctx: &mut Ctx, command: SettingCommand) -> CliResult {
    match command {
        SettingCommand::Set { group, name, value } => {
            let request = SetGroupSettingRequest {
                group_id: ctx.group_id(&group).await?,
                name,
                value: None,
                raw_value: value,
            };
            let setting = ctx
                .policy(
                    request,
                    |mut c, r| async move { c.set_group_setting(r).await },
                )
                .await?;
            if ctx.json() {
                print_json(&policy_json::group_setting(&setting));
            } else {
                println!(
                    "set {} = {} on {group}",
                    setting.name,
                    value_text(setting.value.as_ref())
                );
            }
            Ok(())
        }
        SettingCommand::Unset { group, name } => {
            let request = UnsetGroupSettingRequest {
                group_id: ctx.group_id(&group).await?,
                name: name.clone(),
            };
            let answer = ctx
                .policy(request.clone(), |mut c, r| async move {
                    c.unset_group_setting(r).await
                })
                .await?;
            if ctx.json() {
                print_json(&json!({
                    "removed": answer.removed,
                    "group_id": request.group_id,
                    "name": name,
                }));
            } else if answer.removed {
                println!("unset {name} on {group}");
            } else {
                println!("{group} did not set {name}");
            }
            Ok(())
        }
        SettingCommand::List { group } => {
            let request = ListGroupSettingsRequest {
                group_id: ctx.group_id(&group).await?,
            };
            let answer = ctx
                .policy(
                    request,
                    |mut c, r| async move { c.list_group_settings(r).await },
                )
                .await?;
            if ctx.json() {
                print_json(&json!({
                    "settings": answer.settings.iter().map(policy_json::group_setting).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            let mut table = Table::new(&["NAME", "VALUE", "UPDATED"]);
            for s in &answer.settings {
                table.push(vec![
                    s.name.clone(),
                    value_text(s.value.as_ref()),
                    time_text(s.updated_at.as_ref()),
                ]);
            }
            table.print();
            Ok(())
        }
        SettingCommand::Catalogue => {
            let answer = ctx
                .policy(ListSettingDefinitionsRequest {}, |mut c, r| async move {
                    c.list_setting_definitions(r).await
                })
                .await?;
            if ctx.json() {
                print_json(&json!({
                    "settings": answer.settings.iter().map(policy_json::setting_definition).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            let mut table = Table::new(&["NAME", "TYPE", "DEFAULT", "DESCRIPTION"]);
            for d in &answer.settings {
                table.push(vec![
                    d.name.clone(),
                    type_text(d),
                    value_text(d.default_value.as_ref()),
                    d.description.clone(),
                ]);
            }
            table.print();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::{Cli, Command};
    use clap::Parser;

    use super::*;

    fn parse(args: &[&str]) -> Result<SettingCommand, clap::Error> {
        let cli = Cli::try_parse_from(std::iter::once("atrium").chain(args.iter().copied()))?;
        match cli.command {
            Command::Setting(cmd) => Ok(cmd),
            other => panic!("not a setting command: {other:?}"),
        }
    }

    #[test]
    fn set_takes_any_text_as_the_value() {
        let Ok(SettingCommand::Set { group, name, value }) =
            parse(&["setting", "set", "Staff", "keepalive_interval", "-5"])
        else {
            panic!("expected set");
        };
        assert_eq!(group, GroupRef::Name("Staff".into()));
        assert_eq!(
            (name.as_str(), value.as_str()),
            ("keepalive_interval", "-5")
        );
        let Ok(SettingCommand::Set { value, .. }) = parse(&[
            "setting",
            "set",
            "Staff",
            "run_config",
            r#"{"hostname":"x"}"#,
        ]) else {
            panic!("expected set");
        };
        assert_eq!(value, r#"{"hostname":"x"}"#);
        assert!(parse(&["setting", "set", "Staff", "allow_kasm_pause"]).is_err());
    }
}
