use clap::Parser;
use std::process::ExitCode;
use taskhost::cli::{Cli, Command};
use taskhost::domain::UserId;
use taskhost::telemetry::{self, TraceArgs};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let traces = match &cli.command {
        Command::Serve(args) => args.traces.clone(),
        _ => TraceArgs::off(),
    };
    let telemetry = match telemetry::init(&cli.log_format, &traces) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(taskhost::app::serve(*args))),
        Command::Token {
            user_id,
            ttl_hours,
            auth,
        } => (|| {
            let user = UserId::new(user_id)
                .ok_or_else(|| anyhow::anyhow!("the user id must not be empty"))?;
            let keys = taskhost::api::auth::JwtKeys::from_secret(&auth.secret()?)?;
            println!(
                "{}",
                keys.mint(&user, std::time::Duration::from_secs(ttl_hours * 3600))?
            );
            Ok(())
        })(),
        Command::Invoke {
            component,
            topic,
            event,
            now,
            components,
        } => taskhost::invoke::invoke(&component, &topic, &event, now.as_deref(), &components)
            .map(|v| println!("{}", serde_json::to_string_pretty(&v).expect("JSON"))),
        Command::Components(command) => taskhost::cli::components::run(command),
        Command::DeadLetters(command) => taskhost::cli::dead_letters::run(command),
        Command::New(args) => taskhost::cli::new::run(args),
        Command::Build(args) => taskhost::cli::build::run(*args),
    };
    // The runtime has stopped: flush the spans still queued (graceful shutdown's last step).
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
