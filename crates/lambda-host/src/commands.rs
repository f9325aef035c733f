//! One function per docker subcommand.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::cli_args::{Command, CopyArgs, CreateArgs, EnvArg, ExecArgs, PsArgs};
use crate::container::{self, Config, Container, Root, ROOT_ENV};
use crate::sandbox::{self, BuildMounts, Sandbox};
use crate::{gateway, process, serve};

/// What `--version` prints: fakecloud must classify us as Docker, not podman.
pub const VERSION_LINE: &str = "Docker version 27.0.0, build pipewright-lambda-host";
/// The one "port" a Lambda container publishes.
const LAMBDA_PORT: &str = "8080";
/// How long `start` waits for the server to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `rm` lets the server shut down before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A failed command; printed as `Error: ...`, exit status 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure(e.to_string())
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure(s)
    }
}

pub fn run(root: &Root, cmd: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match cmd {
        Command::Info { format } => info(format.as_deref(), out),
        Command::Version => Ok(writeln!(out, "{VERSION_LINE}")?),
        Command::NetworkInspect { names } => network_inspect(&names, out),
        Command::Create(args) => create(root, args, out),
        Command::CopyIn(args) => copy_in(root, &args),
        Command::CopyOut(args) => copy_out(root, &args),
        Command::Run(args) => run_build_container(root, args, out),
        Command::Exec(args) => exec(root, args),
        Command::Start { ids } => ids.iter().try_for_each(|id| start(root, id, out)),
        Command::Port { id, private_port } => port(root, &id, private_port.as_deref(), out),
        Command::Remove { ids } => {
            for id in ids {
                match root.find(&id) {
                    Ok(c) => {
                        remove(&c)?;
                        writeln!(out, "{id}")?;
                    }
                    Err(e) => root.log(&format!("rm {id}: {e} (already gone)")),
                }
            }
            Ok(())
        }
        Command::Logs { id, tail } => {
            let c = root.find(&id)?;
            Ok(out.write_all(c.log_tail(tail)?.as_bytes())?)
        }
        Command::Ps(args) => ps(root, &args, out),
        Command::Serve { id } => Ok(serve::run(root.find(&id)?)?),
        Command::Gateway(args) => Ok(gateway::run(&args, out)?),
        Command::Ignored => Ok(()),
    }
}

fn info(format: Option<&str>, out: &mut dyn Write) -> Result<(), Failure> {
    if format.is_some_and(|f| f.contains("json")) {
        writeln!(
            out,
            r#"{{"ServerVersion":"27.0.0","Name":"pipewright-lambda-host","OperatingSystem":"host processes"}}"#
        )?;
    } else {
        writeln!(out, "Server Version: 27.0.0\nName: pipewright-lambda-host")?;
    }
    Ok(())
}

/// Only `bridge` exists; its "gateway" is loopback, which fakecloud then
/// passes back as `--add-host host.docker.internal:127.0.0.1`.
fn network_inspect(names: &[String], out: &mut dyn Write) -> Result<(), Failure> {
    for name in names {
        if name != "bridge" {
            return Err(Failure(format!("network {name} not found")));
        }
        writeln!(out, "127.0.0.1")?;
    }
    Ok(())
}

/// `-e` arguments as variables; as docker, a name without a value copies ours, if we have one.
fn resolve_env(args: Vec<EnvArg>) -> Vec<(String, String)> {
    args.into_iter()
        .filter_map(|e| match e {
            EnvArg::Set(k, v) => Some((k, v)),
            EnvArg::Inherit(k) => {
                let v = std::env::var_os(&k)?;
                Some((k, v.to_string_lossy().into_owned()))
            }
        })
        .collect()
}

fn create(root: &Root, args: CreateArgs, out: &mut dyn Write) -> Result<(), Failure> {
    let env = resolve_env(args.env);
    let labels: BTreeMap<String, String> = args.labels.into_iter().collect();
    if !args.ignored.is_empty() {
        root.log(&format!("create: ignoring {}", args.ignored.join(", ")));
    }
    if let Some(p) = args
        .publish
        .iter()
        .find(|p| p.rsplit(':').next() != Some(LAMBDA_PORT))
    {
        root.log(&format!(
            "create: only port 8080 is served; ignoring -p {p}"
        ));
    }
    let c = root.create(Config {
        id: String::new(),
        image: args.image,
        command: args.command,
        env,
        labels,
        name: args.name,
        created_unix: container::unix_now(),
        entrypoint: None,
    })?;
    writeln!(out, "{}", c.id)?;
    Ok(())
}

/// `run -d --entrypoint sleep IMAGE SECONDS`, as fakecloud's CodeBuild starts a build container
/// to `exec` the build's phases in: a container of folders, alive until `rm`. The image is not
/// pulled: the build's commands run on this machine's system folders (see `exec`).
fn run_build_container(root: &Root, args: CreateArgs, out: &mut dyn Write) -> Result<(), Failure> {
    if args.entrypoint.as_deref() != Some("sleep") {
        return Err(Failure(format!(
            "only CodeBuild build containers (run --entrypoint sleep) run here, not {} {}",
            args.image,
            args.command.join(" ")
        )));
    }
    let c = root.create(Config {
        id: String::new(),
        image: args.image,
        command: args.command,
        env: resolve_env(args.env),
        labels: args.labels.into_iter().collect(),
        name: args.name,
        created_unix: container::unix_now(),
        entrypoint: args.entrypoint,
    })?;
    std::fs::create_dir(c.codebuild_dir())?;
    std::fs::create_dir(c.home_dir())?;
    writeln!(out, "{}", c.id)?;
    Ok(())
}

/// `exec CONTAINER COMMAND...` in a build container: the command runs in a sandbox of its own
/// (as a function's: own PID namespace, no capabilities, the host's system folders read-only)
/// whose `/codebuild`, `/tmp` and `/root` are the container's; its output is ours, its exit
/// status ours. Killing this process kills the sandbox (bubblewrap dies with its parent).
fn exec(root: &Root, args: ExecArgs) -> Result<(), Failure> {
    let c = root.find(&args.container)?;
    if !c.is_build() {
        return Err(Failure(format!(
            "exec runs only in build containers; {} is a function's",
            c.id
        )));
    }
    let bwrap = match Sandbox::from_env() {
        Sandbox::Bwrap(bwrap) => bwrap,
        Sandbox::Off => {
            return Err(Failure(format!(
                "build containers always run in a sandbox (a build's commands are a pipeline \
                 author's); {} is off",
                sandbox::SANDBOX_ENV
            )))
        }
        Sandbox::Missing => {
            return Err(Failure(
                "build containers need bubblewrap (bwrap): apt-get install bubblewrap, or \
                 scripts/install-tools"
                    .into(),
            ))
        }
    };
    let mounts = BuildMounts {
        codebuild: c.codebuild_dir(),
        tmp: c.tmp_dir(),
        home: c.home_dir(),
    };
    let mut env = c.config()?.env;
    env.extend(resolve_env(args.env));
    let workdir = args.workdir.as_deref().unwrap_or("/");
    let mut cmd = std::process::Command::new(bwrap);
    cmd.args(sandbox::build_args(&mounts, workdir, &env))
        .args(&args.command)
        .stdin(Stdio::null());
    let marker = c.dir.join(format!("exec-{}", std::process::id()));
    std::fs::write(&marker, b"")?;
    let status = cmd.status();
    let _ = std::fs::remove_file(&marker);
    let status = status?;
    let _ = io::stdout().flush();
    match status.code() {
        Some(0) => Ok(()),
        Some(code) => std::process::exit(code),
        None => std::process::exit(137),
    }
}

/// `cp CONTAINER:PATH DEST`: a build container's files out to the host, as `docker cp`.
fn copy_out(root: &Root, args: &CopyArgs) -> Result<(), Failure> {
    let c = root.find(&args.container)?;
    if !c.is_build() {
        return Err(Failure(format!(
            "copying out of a container is for build containers; {} is a function's",
            c.id
        )));
    }
    let contents_only = args.container_path.ends_with("/.");
    let from = c.resolved_path(args.container_path.trim_end_matches("/."))?;
    container::copy_out(&from, contents_only, std::path::Path::new(&args.src)).map_err(|e| {
        Failure(format!(
            "copying {} to {}: {e}",
            args.container_path, args.src
        ))
    })
}

fn copy_in(root: &Root, args: &CopyArgs) -> Result<(), Failure> {
    let c = root.find(&args.container)?;
    let dest = c.host_path(&args.container_path)?;
    if c.is_build() {
        // A build's commands may have linked a folder elsewhere: the folder copied into must be
        // the container's own.
        let existing = dest.ancestors().find(|a| a.exists()).unwrap_or(&c.dir);
        let inside = std::fs::canonicalize(existing)
            .ok()
            .zip(std::fs::canonicalize(&c.dir).ok())
            .is_some_and(|(at, base)| at.starts_with(base));
        if !inside {
            return Err(Failure(format!(
                "{} leads out of the container (through a symbolic link)",
                args.container_path
            )));
        }
    }
    container::docker_cp(&args.src, &dest)
        .map_err(|e| Failure(format!("copying {} to {}: {e}", args.src, dest.display())))
}

/// The server pid, when it is running.
fn running_server(c: &Container) -> Option<i32> {
    Container::read_pid(&c.serve_pid_path())
        .filter(|pid| process::pid_alive(*pid) && process::cmdline_mentions(*pid, &c.id))
}

fn start(root: &Root, id: &str, out: &mut dyn Write) -> Result<(), Failure> {
    let c = root.find(id)?;
    if running_server(&c).is_some() && c.read_port().is_some() {
        writeln!(out, "{id}")?;
        return Ok(());
    }
    let _ = std::fs::remove_file(c.port_path());
    let exe = std::env::current_exe()?;
    let log = c.open_log()?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("serve")
        .arg(&c.id)
        .env(ROOT_ENV, root.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: new_session only calls setsid, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(process::new_session);
    }
    let mut child = cmd.spawn()?;
    Container::write_pid(&c.serve_pid_path(), child.id())?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if c.read_port().is_some() {
            writeln!(out, "{id}")?;
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Failure(format!(
                "container {id} exited while starting ({status}):\n{}",
                c.log_tail(Some(20)).unwrap_or_default()
            )));
        }
        if Instant::now() >= deadline {
            process::signal_group(child.id() as i32, libc::SIGKILL);
            let _ = child.wait();
            return Err(Failure(format!(
                "container {id} did not listen within {}s",
                START_TIMEOUT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn port(
    root: &Root,
    id: &str,
    private_port: Option<&str>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let c = root.find(id)?;
    let port = c
        .read_port()
        .filter(|_| running_server(&c).is_some())
        .ok_or_else(|| Failure(format!("container {id} is not running")))?;
    match private_port {
        None => writeln!(out, "{LAMBDA_PORT}/tcp -> 127.0.0.1:{port}")?,
        Some(p) if p == LAMBDA_PORT || p == "8080/tcp" => writeln!(out, "127.0.0.1:{port}")?,
        Some(p) => return Err(Failure(format!("No public port '{p}' published for {id}"))),
    }
    Ok(())
}

/// Stop the server's session (it stops the bootstrap), make sure the
/// bootstrap's group is gone too, and delete the state.
pub fn remove(c: &Container) -> Result<(), Failure> {
    if let Some(pid) = running_server(c) {
        process::signal_group(pid, libc::SIGTERM);
        process::signal_process(pid, libc::SIGTERM);
        if !process::wait_gone(pid, STOP_GRACE) {
            process::signal_group(pid, libc::SIGKILL);
            process::wait_gone(pid, Duration::from_secs(1));
        }
    }
    if let Some(pid) = Container::read_pid(&c.bootstrap_pid_path()) {
        if process::pid_alive(pid) && process::cwd_is(pid, &c.task_dir()) {
            process::signal_group(pid, libc::SIGKILL);
        }
    }
    // A build container's running commands: each `exec` left its pid's marker.
    for entry in std::fs::read_dir(&c.dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix("exec-"))
            .and_then(|p| p.parse::<i32>().ok());
        if let Some(pid) = pid {
            if process::pid_alive(pid) && process::cmdline_mentions(pid, &c.id) {
                process::signal_process(pid, libc::SIGKILL);
            }
        }
    }
    match std::fs::remove_dir_all(&c.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Failure(format!("removing {}: {e}", c.dir.display()))),
    }
}

/// A container as `ps` sees it.
struct Listed<'a> {
    id: &'a str,
    config: &'a Config,
    running: bool,
}

impl Listed<'_> {
    fn short_id(&self, no_trunc: bool) -> &str {
        if no_trunc {
            self.id
        } else {
            &self.id[..self.id.len().min(12)]
        }
    }

    fn matches(&self, filter: &str) -> Result<bool, Failure> {
        let (key, value) = filter.split_once('=').ok_or_else(|| {
            Failure(format!(
                "bad format of filter (expected name=value): {filter}"
            ))
        })?;
        Ok(match key {
            "label" => match value.split_once('=') {
                Some((k, v)) => self.config.labels.get(k).is_some_and(|x| x == v),
                None => self.config.labels.contains_key(value),
            },
            "id" => self.id.starts_with(value),
            "name" => self
                .config
                .name
                .as_deref()
                .is_some_and(|n| n.contains(value)),
            "status" => value == if self.running { "running" } else { "created" },
            _ => return Err(Failure(format!("invalid filter '{key}'"))),
        })
    }

    /// Fill a Go-template-ish `--format`: `{{.ID}}`, `{{.Image}}`,
    /// `{{.Names}}`, `{{.Status}}`, `{{.State}}`, `{{.Labels}}`,
    /// `{{.Label "key"}}`; anything else renders empty.
    fn render(&self, template: &str, no_trunc: bool) -> String {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                out.push_str(&rest[start..]);
                return out;
            };
            out.push_str(&self.field(after[..end].trim(), no_trunc));
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        out
    }

    fn field(&self, expr: &str, no_trunc: bool) -> String {
        match expr {
            ".ID" => self.short_id(no_trunc).to_string(),
            ".Image" => self.config.image.clone(),
            ".Names" => self
                .config
                .name
                .clone()
                .unwrap_or_else(|| self.short_id(false).to_string()),
            ".Status" => if self.running { "Up" } else { "Created" }.to_string(),
            ".State" => if self.running { "running" } else { "created" }.to_string(),
            ".Labels" => self
                .config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
            _ => match expr.strip_prefix(".Label ") {
                Some(key) => {
                    let key = key.trim().trim_matches('"');
                    self.config.labels.get(key).cloned().unwrap_or_default()
                }
                None => String::new(),
            },
        }
    }
}

fn ps(root: &Root, args: &PsArgs, out: &mut dyn Write) -> Result<(), Failure> {
    if !args.quiet && args.format.is_none() {
        writeln!(out, "CONTAINER ID\tIMAGE\tSTATUS\tNAMES")?;
    }
    for c in root.list() {
        let Ok(config) = c.config() else {
            continue;
        };
        let listed = Listed {
            id: &c.id,
            config: &config,
            running: running_server(&c).is_some() || c.is_build(),
        };
        if !args.all && !listed.running {
            continue;
        }
        let mut keep = true;
        for f in &args.filters {
            keep &= listed.matches(f)?;
        }
        if !keep {
            continue;
        }
        let line = match (&args.format, args.quiet) {
            (_, true) => listed.short_id(args.no_trunc).to_string(),
            (Some(template), false) => listed.render(template, args.no_trunc),
            (None, false) => listed.render(
                "{{.ID}}\t{{.Image}}\t{{.Status}}\t{{.Names}}",
                args.no_trunc,
            ),
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            id: "0123456789abcdef0123".into(),
            image: "public.ecr.aws/lambda/provided:al2023".into(),
            labels: [
                ("fakecloud-lambda".to_string(), "api".to_string()),
                (
                    "fakecloud-instance".to_string(),
                    "fakecloud-4242".to_string(),
                ),
            ]
            .into(),
            ..Config::default()
        }
    }

    #[test]
    fn reaper_format() {
        let cfg = config();
        let l = Listed {
            id: &cfg.id,
            config: &cfg,
            running: true,
        };
        assert_eq!(
            l.render("{{.ID}} {{.Label \"fakecloud-instance\"}}", false),
            "0123456789ab fakecloud-4242"
        );
        assert_eq!(
            l.render("{{.ID}}|{{.Label \"missing\"}}|{{.Nope}}|{{.State}}", true),
            "0123456789abcdef0123|||running"
        );
        assert_eq!(l.render("unterminated {{.ID", false), "unterminated {{.ID");
    }

    #[test]
    fn filters() {
        let cfg = config();
        let l = Listed {
            id: &cfg.id,
            config: &cfg,
            running: false,
        };
        assert!(l.matches("label=fakecloud-instance").expect("ok"));
        assert!(l.matches("label=fakecloud-lambda=api").expect("ok"));
        assert!(!l.matches("label=fakecloud-lambda=other").expect("ok"));
        assert!(!l.matches("label=absent").expect("ok"));
        assert!(l.matches("id=0123").expect("ok"));
        assert!(l.matches("status=created").expect("ok"));
        assert!(l.matches("bogus=1").is_err());
        assert!(l.matches("nonsense").is_err());
    }

    #[test]
    fn probes_print_what_fakecloud_expects() {
        let root = Root::from_env();
        let mut out = Vec::new();
        run(&root, Command::Version, &mut out).expect("version");
        assert!(String::from_utf8_lossy(&out).starts_with("Docker version "));

        let mut out = Vec::new();
        network_inspect(&["bridge".to_string()], &mut out).expect("bridge");
        assert_eq!(out, b"127.0.0.1\n");
        assert!(network_inspect(&["other".to_string()], &mut Vec::new()).is_err());
    }
}
