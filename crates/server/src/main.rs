//! The `daojia` binary: parses the command line, sets up logging, binds the listener and hands
//! over to the library (STYLE.md rule 4).

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use daojia_server::admin_cli::{self, AdminArgs, TOKEN_ENV};
use daojia_server::config::LogFormat;
use daojia_server::config::TOKENS_ENV;
use daojia_server::export::{self, ExportArgs};
use daojia_server::log_cli;
use daojia_server::simulate::{self, SimulateArgs};
use daojia_server::{Cli, Command, ServeArgs};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    daojia_server::install_crypto_provider();
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Admin(args) => admin(args),
        Command::Simulate(args) => simulate(args),
        Command::Export(args) => export(args),
        Command::Log(args) => ExitCode::from(log_cli::run(&args, &mut std::io::stdout().lock())),
    }
}

fn export(args: ExportArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = args.json;
    let env_token = std::env::var(export::TOKEN_ENV).ok();
    let draw = std::io::stderr().is_terminal();
    match runtime.block_on(export::run(args, env_token, draw)) {
        Ok(summary) => {
            eprintln!("{}", summary.line());
            let mut stdout = std::io::stdout().lock();
            if json && let Err(e) = writeln!(stdout, "{}", summary.json()) {
                eprintln!("daojia export: cannot write the summary: {e}");
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("daojia export: {e}");
            ExitCode::FAILURE
        }
    }
}

fn simulate(args: SimulateArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(simulate::run(args)) {
        Ok(report) => match report.write(&mut std::io::stdout().lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("daojia simulate: cannot write the report: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("daojia simulate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin(args: AdminArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let env_token = std::env::var(TOKEN_ENV).ok();
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(admin_cli::run(args, env_token, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daojia admin: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let env_tokens = std::env::var(TOKENS_ENV).ok();
    let config = match args.resolve(env_tokens.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        daojia_server::run(listener, config, daojia_server::signal::shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
