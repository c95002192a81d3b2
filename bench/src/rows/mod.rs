//! The rows of the table, in the priority order. A row that fails is reported as
//! "not measured" with the reason, and the run fails at the end (CI sees it).

pub mod baseline;
pub mod cost;
pub mod dapr_route;
pub mod embedded;
pub mod footprint;
pub mod host_cost;
pub mod languages;
pub mod real_stack;
pub mod resident;
pub mod shadow;

use crate::Ctx;
use crate::db::Backend;
use crate::report::Row;
use dapr_route::Shape;
use std::path::Path;

/// Which rows a run measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Only {
    /// Every row (row 6 too when a baseline is given; row 7 unless quick).
    All,
    /// Row 5, through the real stack (`--only-real-stack`, `just bench-stack`).
    RealStack,
    /// Row 6, this build beside the baseline (`--only-baseline`).
    Baseline,
    /// Row 7, one consumer in three languages (`--only-languages`, `just bench-languages`).
    Languages,
    /// Row 8, the serving path with a candidate in shadow (`--only-shadow`, `just bench-shadow`).
    Shadow,
    /// Row 3, embedded end to end (`--only-embedded`): SQLite, and PostgreSQL given --pg-url.
    Embedded,
    /// Row 1, each component's per-message cost beside the empty one (`--only-components`,
    /// `just bench-components`): in-process, a minute or so, for changes to a component or to
    /// the runtime.
    Components,
}

/// What the rows measure besides the host and its components: each optional input, when
/// absent, leaves its row "not measured" with the reason.
pub struct Inputs<'a> {
    /// The empty component: the wasm floor (rows 1 and 6, CPU per delivery).
    pub empty_wasm: &'a Path,
    /// A PostgreSQL URL for the PostgreSQL variants of rows 2 and 3.
    pub pg_url: Option<&'a str>,
    /// Hot-swap latency lines (row 4).
    pub hot_swap_log: Option<&'a Path>,
    /// The local stack's PostgreSQL (row 5).
    pub stack_pg_url: Option<&'a str>,
    /// A baseline build to measure this one beside (row 6).
    pub baseline: Option<&'a baseline::Baseline>,
    /// The Python and JavaScript builds of audit (row 7).
    pub polyglot_dir: Option<&'a Path>,
    /// A second build of audit (its `marked` feature) to shadow the serving one (row 8).
    pub shadow_wasm: Option<&'a Path>,
}

pub async fn run_all(
    ctx: &Ctx,
    inputs: &Inputs<'_>,
    only: Only,
) -> anyhow::Result<(Vec<Row>, Vec<String>)> {
    let &Inputs {
        empty_wasm,
        pg_url,
        hot_swap_log,
        stack_pg_url,
        baseline,
        polyglot_dir,
        shadow_wasm,
    } = inputs;
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    let mut fail = |rows: &mut Vec<Row>, id: &str, what: &str, e: anyhow::Error| {
        let why = format!("{e:#}");
        eprintln!("!! {id}: {why}");
        failures.push(format!("{id}: {why}"));
        rows.push(Row::not_measured(id, what, &why));
    };
    match only {
        Only::All | Only::Baseline | Only::Components => {}
        Only::RealStack => {
            real_stack_rows(ctx, stack_pg_url, &mut rows, &mut fail).await;
            return Ok((rows, failures));
        }
        Only::Languages => {
            language_rows(ctx, polyglot_dir, &mut rows, &mut fail).await;
            return Ok((rows, failures));
        }
        Only::Shadow => {
            shadow_row(ctx, shadow_wasm, &mut rows, &mut fail).await;
            return Ok((rows, failures));
        }
        Only::Embedded => {
            embedded_rows(ctx, &backends(ctx, pg_url), &mut 0.0, &mut rows, &mut fail).await;
            return Ok((rows, failures));
        }
    }
    let mut peak_rss = 0.0f64;
    if only == Only::Baseline {
        baseline_rows(
            ctx,
            baseline,
            empty_wasm,
            &mut peak_rss,
            &mut rows,
            &mut fail,
        )
        .await;
        return Ok((rows, failures));
    }

    eprintln!("== row 1: per-message host cost ==");
    let iterations = if ctx.quick { 2_000 } else { 20_000 };
    let (dir, empty) = (ctx.components_dir.clone(), empty_wasm.to_path_buf());
    match tokio::task::spawn_blocking(move || host_cost::run(&dir, &empty, iterations)).await? {
        Ok(r) => rows.extend(r),
        Err(e) => fail(&mut rows, "host_cost", "per-message host cost", e),
    }
    if only == Only::Components {
        return Ok((rows, failures));
    }

    shadow_row(ctx, shadow_wasm, &mut rows, &mut fail).await;

    let backends = backends(ctx, pg_url);
    // The host's and the no-op app's CPU per delivery on the SQLite single route.
    let mut route_cpu: Option<(f64, f64)> = None;
    eprintln!("== row 2: Dapr delivery route ==");
    for backend in &backends {
        // Quick runs use small bulk batches: 64 × 100 entries in flight would not finish
        // inside their 3 s window.
        let shapes: &[Shape] = if ctx.quick {
            &[Shape::Single, Shape::Bulk(10)]
        } else {
            &[Shape::Single, Shape::Bulk(100)]
        };
        for shape in shapes {
            eprintln!(
                "   {} {}",
                backend.name(),
                match shape {
                    Shape::Single => "single",
                    Shape::Bulk(_) => "bulk",
                }
            );
            match dapr_route::run(ctx, backend, *shape, &mut peak_rss).await {
                Ok(m) => {
                    if matches!(backend, Backend::Sqlite) && matches!(shape, Shape::Single) {
                        route_cpu = Some((m.host_cpu_us, m.noop_cpu_us));
                    }
                    rows.push(m.row)
                }
                Err(e) => fail(
                    &mut rows,
                    &format!("dapr_route.{}", backend.name()),
                    "Dapr delivery route",
                    e,
                ),
            }
        }
    }
    if pg_url.is_none() && !ctx.quick {
        rows.push(Row::not_measured(
            "dapr_route.postgres",
            "Dapr delivery route, PostgreSQL",
            "no --pg-url given",
        ));
    }

    eprintln!("== CPU per delivery beside the sum of its parts ==");
    match route_cpu {
        Some((host_us, noop_us)) => {
            let audit = ctx.components_dir.join("audit.wasm");
            match cost::parts(ctx, empty_wasm, &audit, noop_us).await {
                Ok(parts) => {
                    let row = cost::row(host_us, &parts);
                    eprintln!(
                        "   {}: {} vs {}",
                        row.what, row.taskhost.text, row.reference.text
                    );
                    rows.push(row)
                }
                Err(e) => fail(&mut rows, "cpu_per_delivery", "host CPU per delivery", e),
            }
        }
        None => fail(
            &mut rows,
            "cpu_per_delivery",
            "host CPU per delivery",
            anyhow::anyhow!("the SQLite single route row was not measured"),
        ),
    }

    embedded_rows(ctx, &backends, &mut peak_rss, &mut rows, &mut fail).await;

    eprintln!("== row 4: start-up, RSS, hot swap ==");
    match footprint::startup_and_idle(ctx).await {
        Ok((a, b)) => rows.extend([a, b]),
        Err(e) => fail(&mut rows, "startup", "start-up and idle RSS", e),
    }
    rows.push(footprint::rss_under_load(peak_rss));
    match hot_swap_log {
        Some(log) => match footprint::hot_swap(log) {
            Ok(r) => rows.push(r),
            Err(e) => fail(&mut rows, "hot_swap", "hot swap", e),
        },
        None if !ctx.quick => rows.push(Row::not_measured(
            "hot_swap",
            "hot swap",
            "no --hot-swap-log given",
        )),
        None => {}
    }

    if !ctx.quick {
        real_stack_rows(ctx, stack_pg_url, &mut rows, &mut fail).await;
    }

    if baseline.is_some() {
        baseline_rows(
            ctx,
            baseline,
            empty_wasm,
            &mut peak_rss,
            &mut rows,
            &mut fail,
        )
        .await;
    }

    if !ctx.quick {
        language_rows(ctx, polyglot_dir, &mut rows, &mut fail).await;
    }
    Ok((rows, failures))
}

/// Row 6, this build beside a baseline build (`--baseline-host-bin`/`--baseline-bench-bin`).
async fn baseline_rows(
    ctx: &Ctx,
    baseline: Option<&baseline::Baseline>,
    empty_wasm: &Path,
    peak_rss: &mut f64,
    rows: &mut Vec<Row>,
    fail: &mut impl FnMut(&mut Vec<Row>, &str, &str, anyhow::Error),
) {
    const WHAT: &str = "this build beside a baseline build: wasm floor, Dapr route";
    let Some(b) = baseline else {
        rows.push(Row::not_measured(
            "baseline",
            WHAT,
            "no --baseline-host-bin/--baseline-bench-bin given",
        ));
        return;
    };
    eprintln!("== row 6: {} beside {} ==", b.current_label, b.label);
    match baseline::run(ctx, b, empty_wasm, peak_rss).await {
        Ok(r) => rows.extend(r),
        Err(e) => fail(rows, "baseline", WHAT, e),
    }
}

/// Row 7: audit built from Rust, Python and JavaScript (`just build-polyglot` makes the last two).
async fn language_rows(
    ctx: &Ctx,
    polyglot_dir: Option<&Path>,
    rows: &mut Vec<Row>,
    fail: &mut impl FnMut(&mut Vec<Row>, &str, &str, anyhow::Error),
) {
    const WHAT: &str = "audit built from Rust, Python and JavaScript";
    eprintln!("== row 7: one consumer, three languages ==");
    let Some(dir) = polyglot_dir else {
        rows.push(Row::not_measured(
            "languages",
            WHAT,
            "no --polyglot-dir given (`just build-polyglot` builds the Python and JavaScript audit)",
        ));
        return;
    };
    let builds = [
        ("rust", ctx.components_dir.join("audit.wasm")),
        ("python", dir.join("python/audit.wasm")),
        ("javascript", dir.join("javascript/audit.wasm")),
    ];
    let iterations = if ctx.quick { 200 } else { 2_000 };
    let scratch = ctx.scratch.clone();
    let result = tokio::task::spawn_blocking(move || {
        let builds: Vec<(&str, &Path)> = builds.iter().map(|(l, p)| (*l, p.as_path())).collect();
        languages::run(&builds, &scratch, iterations)
    })
    .await;
    match result {
        Ok(Ok(r)) => rows.extend(r),
        Ok(Err(e)) => fail(rows, "languages", WHAT, e),
        Err(e) => fail(rows, "languages", WHAT, e.into()),
    }
}

/// Row 5, single then bulk subscribe; needs the local stack running (`just bench` starts it).
async fn real_stack_rows(
    ctx: &Ctx,
    stack_pg_url: Option<&str>,
    rows: &mut Vec<Row>,
    fail: &mut impl FnMut(&mut Vec<Row>, &str, &str, anyhow::Error),
) {
    const WHAT: &str =
        "through daprd + Kafka + PostgreSQL: events/s, publish → last effect p50/p95/p99";
    eprintln!("== row 5: through the real stack ==");
    let Some(url) = stack_pg_url else {
        rows.push(Row::not_measured(
            "stack",
            WHAT,
            "no --stack-pg-url given (the local stack's PostgreSQL; `just bench` starts the stack)",
        ));
        return;
    };
    let stack = match real_stack::Stack::from_env(url.to_string()) {
        Ok(s) => s,
        Err(e) => return fail(rows, "stack", WHAT, e),
    };
    for bulk in [false, true] {
        let id = if bulk { "stack.bulk" } else { "stack.single" };
        match real_stack::run(ctx, &stack, bulk).await {
            Ok(r) => rows.push(r),
            Err(e) => fail(rows, id, WHAT, e),
        }
    }
}

/// Row 8: the serving path with a candidate in shadow beside without.
async fn shadow_row(
    ctx: &Ctx,
    shadow_wasm: Option<&Path>,
    rows: &mut Vec<Row>,
    fail: &mut impl FnMut(&mut Vec<Row>, &str, &str, anyhow::Error),
) {
    const WHAT: &str = "serving path with a candidate in shadow beside without";
    eprintln!("== row 8: the serving path with a candidate in shadow ==");
    let Some(wasm) = shadow_wasm else {
        rows.push(Row::not_measured(
            "shadow",
            WHAT,
            "no --shadow-wasm given (audit built with its `marked` feature)",
        ));
        return;
    };
    match shadow::run(ctx, wasm).await {
        Ok(measured) => {
            for r in measured {
                eprintln!("   {}: {} vs {}", r.id, r.taskhost.text, r.reference.text);
                rows.push(r)
            }
        }
        Err(e) => fail(rows, "shadow", WHAT, e),
    }
}

/// SQLite always; PostgreSQL when a URL is given, except in quick runs.
fn backends(ctx: &Ctx, pg_url: Option<&str>) -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    match pg_url {
        Some(url) if !ctx.quick => backends.push(Backend::Postgres(url.to_string())),
        _ => {}
    }
    backends
}

/// Row 3 on each backend.
async fn embedded_rows(
    ctx: &Ctx,
    backends: &[Backend],
    peak_rss: &mut f64,
    rows: &mut Vec<Row>,
    fail: &mut impl FnMut(&mut Vec<Row>, &str, &str, anyhow::Error),
) {
    eprintln!("== row 3: embedded end-to-end ==");
    for backend in backends {
        eprintln!("   {}", backend.name());
        match embedded::run(ctx, backend, peak_rss).await {
            Ok(r) => rows.push(r),
            Err(e) => fail(
                rows,
                &format!("embedded.{}", backend.name()),
                "embedded end-to-end",
                e,
            ),
        }
    }
}
