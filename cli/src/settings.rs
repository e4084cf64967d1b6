//! Resolves registry flags into the options the library takes, once per command.

use std::io::BufRead;

use anyhow::{Context, Result};
use oci_client::Reference;
use weir_cli::oci::auth::{self, Credentials};
use weir_cli::oci::registry::{Registry, RegistryOptions};
use weir_cli::oci::retry::RetryPolicy;

use crate::args::RegistryArgs;

/// Registry flags with the stdin password read (once, however many registries a command uses).
#[derive(Debug)]
pub struct RegistrySettings {
    args: RegistryArgs,
    explicit: Option<Credentials>,
}

impl RegistrySettings {
    /// Reads the password from stdin if `--username` was given.
    pub fn new(args: &RegistryArgs) -> Result<Self> {
        let explicit = match &args.username {
            Some(username) => {
                let mut password = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut password)
                    .context("reading the password from stdin")?;
                let password = password.trim_end_matches(['\r', '\n']).to_string();
                Some(Credentials {
                    username: username.clone(),
                    password,
                })
            }
            None => None,
        };
        Ok(RegistrySettings {
            args: args.clone(),
            explicit,
        })
    }

    /// A client for `reference`'s registry; see [`registry_for`] for where credentials come from.
    pub fn registry_for(&self, reference: &Reference) -> Result<Registry> {
        build(&self.args, self.explicit.clone(), reference)
    }
}

/// Builds a registry client for `reference`, finding credentials in this order: --username
/// with --password-stdin, --pull-secret, --docker-config (or the default docker config).
pub fn registry_for(args: &RegistryArgs, reference: &Reference) -> Result<Registry> {
    RegistrySettings::new(args)?.registry_for(reference)
}

fn build(
    args: &RegistryArgs,
    explicit: Option<Credentials>,
    reference: &Reference,
) -> Result<Registry> {
    let host = reference.resolve_registry();
    let credentials = if let Some(credentials) = explicit {
        Some(credentials)
    } else if let Some(path) = &args.pull_secret {
        let config = auth::read_pull_secret(path)?;
        Some(config.lookup(host)?.with_context(|| {
            weir_cli::UserError(format!(
                "the pull secret {} has no credentials for {host}",
                path.display()
            ))
        })?)
    } else {
        let path = args
            .docker_config
            .clone()
            .or_else(auth::default_docker_config_path);
        match path {
            Some(path) => match auth::read_docker_config(&path)? {
                Some(config) => config.lookup(host)?,
                None if args.docker_config.is_some() => {
                    return Err(weir_cli::UserError(format!(
                        "docker config {} does not exist",
                        path.display()
                    ))
                    .into())
                }
                None => None,
            },
            None => None,
        }
    };
    Registry::new(RegistryOptions {
        insecure: args.insecure,
        ca_certs: args.ca_certs.clone(),
        credentials,
        retry: RetryPolicy {
            attempts: args.retries.max(1),
            ..RetryPolicy::default()
        },
    })
}
