//! `conclave`: run the Conclave servers (`serve`), play the whole system's story (`demo`),
//! talk from a terminal (`init`, `contacts`, `group`, `send`, `listen`), or from a browser
//! (`web`).
#![forbid(unsafe_code)]

mod chat;
mod demo;
mod error;
mod people;
mod profile;
mod stack;
mod web;

use clap::{CommandFactory as _, Parser, Subcommand};
use error::CliError;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Conclave: end-to-end encrypted group messaging (MLS, RFC 9420).
#[derive(Debug, Parser)]
#[command(name = "conclave", version, about)]
struct Cli {
    /// The profile directory of this device (default: $CONCLAVE_HOME or ~/.conclave).
    #[arg(long, global = true, env = "CONCLAVE_PROFILE")]
    profile: Option<PathBuf>,
    /// Print results as JSON (one object per line), for scripts.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Play the story of the whole system on servers started in this process: register,
    /// contacts, a group, messages, a device added later, a removal, a commit race, a
    /// restart, a revocation. Exits non-zero if any check fails.
    Demo(demo::DemoArgs),
    /// Run the Authentication Service and the Delivery Service, each on its own database,
    /// on two ports, until interrupted.
    Serve(ServeArgs),
    /// Operator: create a single-use invitation code for a user of the AS in --data.
    Invite(InviteArgs),
    /// Register this device (a new profile) with an invitation code or an OIDC ID token.
    Init(people::InitArgs),
    /// Show this device: user, device id, servers, the user's other devices.
    Whoami,
    /// Contacts: ask, accept, decline, list.
    #[command(subcommand)]
    Contacts(people::ContactsCommand),
    /// Groups: create, add, remove, leave, list, members, verify, update.
    #[command(subcommand)]
    Group(people::GroupCommand),
    /// Send a message to a group.
    Send {
        /// The group (its id, or a unique prefix of it).
        group: String,
        /// The message.
        #[arg(required = true, num_args = 1..)]
        text: Vec<String>,
    },
    /// Chat in a group interactively: members, recent history, then live: type to send,
    /// see what arrives; /help for commands.
    Chat {
        /// The group (its id, or a unique prefix of it).
        group: String,
    },
    /// Print what arrives (messages, members, contact requests) until interrupted.
    Listen {
        /// Fetch once, print, and exit.
        #[arg(long)]
        once: bool,
        /// Skip (and acknowledge) the events up to this id: the last `id` a script kept
        /// from the `--json` lines of an earlier run, so that an event whose
        /// acknowledgement a crash interrupted is not printed twice.
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
    },
    /// Run this device's client and serve a messenger page to you in your browser, on
    /// loopback only: it prints (and opens) a link holding a secret for this launch. On a
    /// new profile the page registers the device.
    Web(web::WebArgs),
    /// Revoke one of your devices (by id; see `conclave whoami`).
    Revoke {
        /// The device id.
        device: String,
    },
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `conclave serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Directory of the databases and the AS's keys.
    #[arg(long, default_value = "conclave-data")]
    data: PathBuf,
    /// Where the AS listens.
    #[arg(long, default_value = "127.0.0.1:8443")]
    as_listen: SocketAddr,
    /// Where the (first) DS node listens.
    #[arg(long, default_value = "127.0.0.1:8444")]
    ds_listen: SocketAddr,
    /// The engines (with --postgres: databases `conclave_as` and `conclave_ds`).
    #[command(flatten)]
    engine: stack::EngineArgs,
    /// OpenID Connect issuers the AS trusts for registration, as `conclave-as --oidc`
    /// takes them (JSON: `{"issuers": [{"issuer", "audiences", "jwks_file" or
    /// "jwks_url", …}]}`). Without it, registration is by invitation only.
    #[arg(long)]
    oidc: Option<PathBuf>,
}

/// `conclave invite`.
#[derive(Debug, clap::Args)]
pub struct InviteArgs {
    /// The user, user@domain.
    user: String,
    /// The data directory of `conclave serve`.
    #[arg(long, default_value = "conclave-data")]
    data: PathBuf,
    /// The PostgreSQL URL given to `conclave serve --postgres`.
    #[arg(long)]
    postgres: Option<String>,
}

/// The prefix of the databases `conclave serve --postgres` uses.
const SERVE_DATABASES: &str = "conclave";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let json = cli.json;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("conclave: cannot start: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&e).unwrap_or_else(|_| e.to_string())
                );
            }
            eprintln!("conclave: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let out = people::Output { json: cli.json };
    let profile_dir = cli.profile.unwrap_or_else(profile::Profile::default_dir);
    match cli.command {
        Command::Demo(args) => demo::run(args, &out).await,
        Command::Serve(args) => serve(args, &out).await,
        Command::Invite(args) => invite(args, &out).await,
        Command::Init(args) => people::init(&profile_dir, args, &out).await,
        Command::Whoami => people::whoami(&profile_dir, &out).await,
        Command::Contacts(c) => people::contacts(&profile_dir, c, &out).await,
        Command::Group(c) => people::group(&profile_dir, c, &out).await,
        Command::Send { group, text } => {
            people::send(&profile_dir, &group, &text.join(" "), &out).await
        }
        Command::Chat { group } => chat::run(&profile_dir, &group).await,
        Command::Listen { once, after } => {
            people::listen(&profile_dir, once, after.unwrap_or(0), &out).await
        }
        Command::Web(args) => web::run(&profile_dir, args, &out).await,
        Command::Revoke { device } => people::revoke(&profile_dir, &device, &out).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "conclave",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs, out: &people::Output) -> Result<(), CliError> {
    let postgres = match &args.engine.postgres {
        Some(url) => Some(stack::prepare_postgres(url, SERVE_DATABASES).await?),
        None => None,
    };
    let options = stack::StackOptions {
        data: args.data.clone(),
        postgres,
        nats: args.engine.nats,
        nodes: args.engine.nodes,
        as_listen: args.as_listen,
        ds_listen: args.ds_listen,
        oidc: args.oidc.clone(),
    };
    let stack = stack::Stack::start(options).await?;
    let ds = stack.delivery_urls();
    out.print(
        &format!(
            "AS {}\nDS {}\n\nInvite a person:  conclave invite --data {} USER@DOMAIN\nThen, as them:    conclave init --as {} --ds {} --code CODE{}\nStop with Ctrl-C.",
            stack.auth_url(),
            ds.join(" "),
            args.data.display(),
            stack.auth_url(),
            ds[0],
            if args.oidc.is_some() {
                " (or --oidc)"
            } else {
                ""
            },
        ),
        serde_json::json!({ "auth_url": stack.auth_url(), "delivery_urls": ds }),
    );
    let _ = tokio::signal::ctrl_c().await;
    stack.stop().await;
    Ok(())
}

async fn invite(args: InviteArgs, out: &people::Output) -> Result<(), CliError> {
    let mut options =
        conclave_as::server::Options::sqlite(args.data.join("as.db"), args.data.join("as-keys"));
    if let Some(url) = &args.postgres {
        options.postgres = Some(stack::prepare_postgres(url, SERVE_DATABASES).await?.auth);
    } else if !args.data.join("as.db").exists() {
        return Err(CliError::new(
            "no_server_data",
            format!("no AS database in {}", args.data.display()),
            "give the --data directory of `conclave serve`",
        ));
    }
    let service = conclave_as::server::open(&options)
        .await
        .map_err(|e| CliError::bare("servers", e.to_string()))?;
    let code = service
        .create_invitation(&args.user, None)
        .await
        .map_err(|e| CliError::new("invalid", e.to_string(), "a user id is user@domain"))?;
    out.print(
        &code,
        serde_json::json!({ "user": args.user, "code": code }),
    );
    Ok(())
}
