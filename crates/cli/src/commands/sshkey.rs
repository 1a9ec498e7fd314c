//! `atrium ssh-key generate|show`.

use atrium_proto::identity::v1::{GenerateSshKeyRequest, GetSshKeyRequest, SshKey};

use super::Ctx;
use crate::args::{UserRef, parse_user_ref};
use crate::error::CliResult;
use crate::json::{self, time_text};
use crate::output::{print_fields, print_json};

#[derive(Debug, clap::Subcommand)]
pub enum SshKeyCommand {
    /// Generate a new key pair for a user (replacing theirs); prints the private key once.
    Generate {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
    },
    /// Show a user's public key (and, for admins, the private key with --private).
    Show {
        #[arg(value_parser = parse_user_ref)]
        user: UserRef,
        /// Include the private key (admins only).
        #[arg(long)]
        private: bool,
    },
}

pub async fn run(ctx: &mut Ctx, command: SshKeyCommand) -> CliResult {
    match command {
        SshKeyCommand::Generate { user } => {
            let request = GenerateSshKeyRequest {
                user_id: ctx.user_id(&user).await?,
            };
            let key = ctx
                .identity
                .call(
                    request,
                    |mut c, r| async move { c.generate_ssh_key(r).await },
                )
                .await?;
            show(ctx, &key);
        }
        SshKeyCommand::Show { user, private } => {
            let request = GetSshKeyRequest {
                user_id: ctx.user_id(&user).await?,
                include_private_key: private,
            };
            let key = ctx
                .identity
                .call(request, |mut c, r| async move { c.get_ssh_key(r).await })
                .await?;
            show(ctx, &key);
        }
    }
    Ok(())
}

fn show(ctx: &Ctx, key: &SshKey) {
    if ctx.json() {
        print_json(&json::ssh_key(key));
        return;
    }
    print_fields(&[
        ("user id", key.user_id.clone()),
        ("fingerprint", key.fingerprint.clone()),
        ("updated", time_text(key.updated_at.as_ref())),
        ("public key", key.public_key.clone()),
    ]);
    if !key.private_key.is_empty() {
        println!("private key:");
        print!("{}", key.private_key);
        if !key.private_key.ends_with('\n') {
            println!();
        }
    }
}
