//! The `conclave-ds` binary: `conclave-ds --listen 127.0.0.1:8081 --db ds.sqlite`, or
//! `--postgres URL [--nats URL]` for several nodes.
#![forbid(unsafe_code)]

use clap::Parser;
use conclave_ds::config::Config;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let config = Config::parse();
    let server = match conclave_ds::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("conclave-ds: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // Print the bound address (useful with --listen 127.0.0.1:0).
    println!("listening on {}", server.addr);
    tokio::select! {
        r = server.task => {
            if let Ok(Err(e)) = r {
                eprintln!("conclave-ds: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
        _ = tokio::signal::ctrl_c() => {}
    }
    std::process::ExitCode::SUCCESS
}
