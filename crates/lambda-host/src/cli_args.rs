//! Docker-style argv parsing.
//!
//! Only the subcommands and flags fakecloud's Lambda runtime (and its startup
//! reaper) actually send are understood; see `fakecloud-lambda`'s
//! `runtime/docker.rs` and `fakecloud-core`'s `container_net.rs`. A flag we
//! don't know is an error for the commands whose meaning depends on their
//! flags (`create`, `cp`), so a change in fakecloud's argv shows up as a clear
//! failure instead of a silently misread image name.

use std::fmt;
use std::path::PathBuf;

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `info [--format F]`: liveness probe.
    Info { format: Option<String> },
    /// `--version`, `-v`, `version`.
    Version,
    /// `network inspect NAME... [--format F]`.
    NetworkInspect { names: Vec<String> },
    /// `create [FLAGS] IMAGE [COMMAND...]`.
    Create(CreateArgs),
    /// `cp SRC CONTAINER:PATH`.
    CopyIn(CopyArgs),
    /// `cp CONTAINER:PATH DEST`.
    CopyOut(CopyArgs),
    /// `run [FLAGS] IMAGE [COMMAND...]`: a CodeBuild build container (`--entrypoint sleep`).
    Run(CreateArgs),
    /// `exec [FLAGS] CONTAINER COMMAND...`: a command in a build container's sandbox.
    Exec(ExecArgs),
    /// `start ID...`.
    Start { ids: Vec<String> },
    /// `port ID [PRIVATE_PORT[/PROTO]]`.
    Port {
        id: String,
        private_port: Option<String>,
    },
    /// `rm [-f] ID...`, `stop ID...`, `kill ID...`.
    Remove { ids: Vec<String> },
    /// `logs [--tail N] ID`.
    Logs { id: String, tail: Option<usize> },
    /// `ps [-a] [-q] [--filter F]... [--format F]`.
    Ps(PsArgs),
    /// Hidden: `serve ID`, the detached per-container server.
    Serve { id: String },
    /// `gateway --emulator URL --function NAME [...]`: a local Function URL
    /// for one function in the emulator. Not a docker command.
    Gateway(GatewayArgs),
    /// Anything else (`pull`, `tag`, `image inspect`, `network ls`, ...):
    /// succeed quietly.
    Ignored,
}

/// One `-e` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvArg {
    /// `-e KEY=VALUE`.
    Set(String, String),
    /// `-e KEY`: the value comes from the CLI's own environment (this is how
    /// fakecloud keeps credentials off the command line).
    Inherit(String),
}

/// Arguments of `create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateArgs {
    pub image: String,
    /// Everything after the image: for zip functions, the handler.
    pub command: Vec<String>,
    pub env: Vec<EnvArg>,
    pub labels: Vec<(String, String)>,
    pub publish: Vec<String>,
    pub add_hosts: Vec<String>,
    pub tmpfs: Vec<String>,
    pub name: Option<String>,
    /// `--entrypoint`.
    pub entrypoint: Option<String>,
    /// Flags accepted but without effect here, for the debug log.
    pub ignored: Vec<String>,
}

/// Arguments of `exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecArgs {
    pub container: String,
    pub env: Vec<EnvArg>,
    /// `-w`: the working directory inside the container.
    pub workdir: Option<String>,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// Arguments of `cp`, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// The host side as given, e.g. `/tmp/x/.`: the source of a copy in, the destination of a
    /// copy out.
    pub src: String,
    pub container: String,
    /// Absolute path inside the container, e.g. `/var/task`, with a trailing `/.` when only
    /// a directory's contents are copied out.
    pub container_path: String,
}

/// Arguments of `ps`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PsArgs {
    pub all: bool,
    pub quiet: bool,
    pub no_trunc: bool,
    pub filters: Vec<String>,
    pub format: Option<String>,
}

/// Arguments of `gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayArgs {
    /// The emulator's endpoint, `http://127.0.0.1:PORT`.
    pub emulator: String,
    /// The function to invoke: a name, or an ARN.
    pub function: String,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Where to write the bound port, for the parent to read.
    pub port_file: Option<PathBuf>,
    /// The region the function lives in (the invocation's credential scope,
    /// and the Function URL's domain name).
    pub region: String,
    /// Exit once this process is gone.
    pub parent_pid: Option<i32>,
    /// `--status-events`: also put Step Functions' status events on the emulator's bus, which
    /// fakecloud does not (see `status_events.rs`).
    pub status_events: bool,
    /// `--auth AWS_IAM`: only requests signed (SigV4, service `lambda`) with the credentials in
    /// `$PIPEWRIGHT_GATEWAY_CREDENTIALS` (`ACCESS_KEY_ID:SECRET`) pass, as an `AWS_IAM`
    /// Function URL lets only IAM-authenticated requests through; the event then names
    /// `--principal` as the caller.
    pub iam: Option<IamAuth>,
}

/// An identity an `AWS_IAM` gateway accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamAuth {
    /// Its access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret: String,
    /// The principal's ARN, as `requestContext.authorizer.iam.userArn`.
    pub principal: String,
    /// More identities (`$PIPEWRIGHT_GATEWAY_IDENTITIES`): a file of lines `ACCESS_KEY_ID SECRET
    /// PRINCIPAL_ARN`, read at each request, so a test or a user can act as other IAM principals.
    pub identities_file: Option<PathBuf>,
}

/// The environment variable naming an `AWS_IAM` gateway's file of more identities.
pub const GATEWAY_IDENTITIES_ENV: &str = "PIPEWRIGHT_GATEWAY_IDENTITIES";

/// The environment variable an `AWS_IAM` gateway reads its credentials from.
pub const GATEWAY_CREDENTIALS_ENV: &str = "PIPEWRIGHT_GATEWAY_CREDENTIALS";

/// A command line we can't make sense of. Docker exits 125 for these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

/// Parse `args` (without the program name).
pub fn parse(args: &[String]) -> Result<Command, UsageError> {
    let Some((sub, rest)) = args.split_first() else {
        return Err(usage("no command given"));
    };
    match sub.as_str() {
        "--version" | "-v" | "version" => Ok(Command::Version),
        "info" => parse_info(rest),
        "system" if rest.first().map(String::as_str) == Some("info") => parse_info(&rest[1..]),
        "network" => parse_network(rest),
        "create" => parse_create(rest).map(Command::Create),
        "container" => parse_container_alias(rest),
        "cp" => parse_cp(rest),
        "run" => parse_create(rest).map(Command::Run),
        "exec" => parse_exec(rest).map(Command::Exec),
        "start" => parse_start(rest),
        "port" => parse_port(rest),
        "rm" | "stop" | "kill" => parse_remove(sub, rest),
        "logs" => parse_logs(rest),
        "ps" => parse_ps(rest).map(Command::Ps),
        "gateway" => parse_gateway(rest).map(Command::Gateway),
        "serve" => match rest {
            [id] => Ok(Command::Serve { id: id.clone() }),
            _ => Err(usage("serve takes exactly one container id")),
        },
        _ => Ok(Command::Ignored),
    }
}

/// `container create|start|rm|...` is the long form of the same commands.
fn parse_container_alias(rest: &[String]) -> Result<Command, UsageError> {
    match rest.first().map(String::as_str) {
        Some(
            "create" | "cp" | "start" | "port" | "rm" | "stop" | "kill" | "logs" | "ps" | "run"
            | "exec",
        ) => parse(rest),
        Some("ls") => {
            let mut args = vec!["ps".to_string()];
            args.extend_from_slice(&rest[1..]);
            parse(&args)
        }
        _ => Ok(Command::Ignored),
    }
}

/// Split `--flag=value` into its parts; other tokens come back whole.
fn split_inline(token: &str) -> (&str, Option<&str>) {
    if token.starts_with("--") {
        if let Some((flag, value)) = token.split_once('=') {
            return (flag, Some(value));
        }
    }
    (token, None)
}

/// The value of a flag: the inline `=value` part, or the next argument.
fn take_value<'a>(
    flag: &str,
    inline: Option<&'a str>,
    it: &mut std::slice::Iter<'a, String>,
) -> Result<&'a str, UsageError> {
    match inline {
        Some(v) => Ok(v),
        None => it
            .next()
            .map(String::as_str)
            .ok_or_else(|| usage(format!("flag needs an argument: {flag}"))),
    }
}

fn parse_info(rest: &[String]) -> Result<Command, UsageError> {
    let mut format = None;
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        if flag == "--format" || flag == "-f" {
            format = Some(take_value(flag, inline, &mut it)?.to_string());
        }
    }
    Ok(Command::Info { format })
}

fn parse_network(rest: &[String]) -> Result<Command, UsageError> {
    if rest.first().map(String::as_str) != Some("inspect") {
        return Ok(Command::Ignored);
    }
    let mut names = Vec::new();
    let mut it = rest[1..].iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        match flag {
            "--format" | "-f" => {
                take_value(flag, inline, &mut it)?;
            }
            "--verbose" | "-v" => {}
            _ if flag.starts_with('-') => return Err(usage(format!("unknown flag: {flag}"))),
            _ => names.push(token.clone()),
        }
    }
    if names.is_empty() {
        return Err(usage("network inspect requires at least one network"));
    }
    Ok(Command::NetworkInspect { names })
}

/// `create` flags that take a value but have no effect on a host process.
const CREATE_IGNORED_VALUE_FLAGS: &[&str] = &[
    "--network",
    "--net",
    "--platform",
    "-m",
    "--memory",
    "--cpus",
    "--restart",
    "--pull",
    "--shm-size",
    "--ulimit",
    "--log-driver",
    "--log-opt",
    "--security-opt",
    "--cap-add",
    "--cap-drop",
    "--dns",
    "--stop-timeout",
    "--hostname",
    "-h",
];

/// `create` flags without a value and without effect here.
const CREATE_IGNORED_SWITCHES: &[&str] = &[
    "--rm",
    "-i",
    "--interactive",
    "-t",
    "--tty",
    "-it",
    "-d",
    "--detach",
    "--init",
    "--privileged",
    "--read-only",
];

fn parse_create(rest: &[String]) -> Result<CreateArgs, UsageError> {
    let mut out = CreateArgs::default();
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        if token == "--" {
            break;
        }
        if !token.starts_with('-') || token == "-" {
            out.image = token.clone();
            out.command = it.by_ref().cloned().collect();
            return Ok(out);
        }
        let (flag, inline) = split_inline(token);
        // Short flags with the value glued on: `-eKEY=V`, `-p8080`.
        let (flag, inline) = match (flag.as_bytes(), inline) {
            ([b'-', c, _, ..], None) if *c != b'-' && matches!(*c, b'e' | b'p' | b'l') => {
                (&flag[..2], Some(&flag[2..]))
            }
            _ => (flag, inline),
        };
        match flag {
            "-e" | "--env" => out.env.push(parse_env(take_value(flag, inline, &mut it)?)?),
            "-l" | "--label" => {
                let v = take_value(flag, inline, &mut it)?;
                let (k, val) = v.split_once('=').unwrap_or((v, ""));
                out.labels.push((k.to_string(), val.to_string()));
            }
            "-p" | "--publish" => out
                .publish
                .push(take_value(flag, inline, &mut it)?.to_string()),
            "--add-host" => out
                .add_hosts
                .push(take_value(flag, inline, &mut it)?.to_string()),
            "--tmpfs" => out
                .tmpfs
                .push(take_value(flag, inline, &mut it)?.to_string()),
            "--name" => out.name = Some(take_value(flag, inline, &mut it)?.to_string()),
            "--entrypoint" => out.entrypoint = Some(take_value(flag, inline, &mut it)?.to_string()),
            _ if CREATE_IGNORED_VALUE_FLAGS.contains(&flag) => {
                let v = take_value(flag, inline, &mut it)?;
                out.ignored.push(format!("{flag} {v}"));
            }
            _ if CREATE_IGNORED_SWITCHES.contains(&flag) => out.ignored.push(flag.to_string()),
            _ => return Err(usage(format!("unknown flag for create: {flag}"))),
        }
    }
    // Only reached through `--` or the end of the arguments.
    let mut remaining = it.cloned();
    match remaining.next() {
        Some(image) => {
            out.image = image;
            out.command = remaining.collect();
            Ok(out)
        }
        None => Err(usage("create requires an image")),
    }
}

fn parse_env(value: &str) -> Result<EnvArg, UsageError> {
    match value.split_once('=') {
        Some(("", _)) => Err(usage(format!("invalid environment variable: {value}"))),
        Some((k, v)) => Ok(EnvArg::Set(k.to_string(), v.to_string())),
        None if value.is_empty() => Err(usage("invalid environment variable: empty")),
        None => Ok(EnvArg::Inherit(value.to_string())),
    }
}

/// Split `CONTAINER:PATH`. A path that starts with `/` or `.` is local, as in
/// docker (which asks for `./a:b` to name a local file with a colon).
pub fn split_container_path(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    match arg.split_once(':') {
        Some((id, path)) if !id.is_empty() => Some((id, path)),
        _ => None,
    }
}

fn parse_exec(rest: &[String]) -> Result<ExecArgs, UsageError> {
    let mut out = ExecArgs::default();
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        if !token.starts_with('-') || token == "-" {
            out.container = token.clone();
            out.command = it.by_ref().cloned().collect();
            if out.command.is_empty() {
                return Err(usage("exec requires a command"));
            }
            return Ok(out);
        }
        let (flag, inline) = split_inline(token);
        match flag {
            "-e" | "--env" => out.env.push(parse_env(take_value(flag, inline, &mut it)?)?),
            "-w" | "--workdir" => {
                out.workdir = Some(take_value(flag, inline, &mut it)?.to_string())
            }
            "-u" | "--user" => {
                take_value(flag, inline, &mut it)?;
            }
            "-i" | "--interactive" | "-t" | "--tty" | "-it" => {}
            _ => return Err(usage(format!("unknown flag for exec: {flag}"))),
        }
    }
    Err(usage("exec requires a container and a command"))
}

fn parse_cp(rest: &[String]) -> Result<Command, UsageError> {
    let mut positional = Vec::new();
    for token in rest {
        match token.as_str() {
            "-a" | "--archive" | "-L" | "--follow-link" | "-q" | "--quiet" => {}
            t if t.starts_with('-') && t != "-" => {
                return Err(usage(format!("unknown flag for cp: {t}")))
            }
            _ => positional.push(token.as_str()),
        }
    }
    let [src, dest] = positional[..] else {
        return Err(usage(
            "cp requires exactly two arguments: SRC CONTAINER:PATH",
        ));
    };
    if let Some((container, path)) = split_container_path(src) {
        if split_container_path(dest).is_some() {
            return Err(usage("copying between containers is not supported"));
        }
        if !path.starts_with('/') {
            return Err(usage(format!("container path must be absolute: {path}")));
        }
        return Ok(Command::CopyOut(CopyArgs {
            src: dest.to_string(),
            container: container.to_string(),
            container_path: path.to_string(),
        }));
    }
    let Some((container, path)) = split_container_path(dest) else {
        return Err(usage(format!(
            "cp destination must be CONTAINER:PATH, got {dest}"
        )));
    };
    if !path.starts_with('/') {
        return Err(usage(format!("container path must be absolute: {path}")));
    }
    Ok(Command::CopyIn(CopyArgs {
        src: src.to_string(),
        container: container.to_string(),
        container_path: path.to_string(),
    }))
}

/// Collect positional ids, skipping the given switches and value flags.
fn ids_skipping(
    rest: &[String],
    switches: &[&str],
    value_flags: &[&str],
) -> Result<Vec<String>, UsageError> {
    let mut ids = Vec::new();
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        if switches.contains(&flag) {
            continue;
        }
        if value_flags.contains(&flag) {
            take_value(flag, inline, &mut it)?;
            continue;
        }
        if flag.starts_with('-') {
            return Err(usage(format!("unknown flag: {flag}")));
        }
        ids.push(token.clone());
    }
    Ok(ids)
}

fn parse_start(rest: &[String]) -> Result<Command, UsageError> {
    let ids = ids_skipping(rest, &["-a", "--attach", "-i", "--interactive"], &[])?;
    if ids.is_empty() {
        return Err(usage("start requires at least one container"));
    }
    Ok(Command::Start { ids })
}

fn parse_port(rest: &[String]) -> Result<Command, UsageError> {
    match rest {
        [id] => Ok(Command::Port {
            id: id.clone(),
            private_port: None,
        }),
        [id, port] => Ok(Command::Port {
            id: id.clone(),
            private_port: Some(port.clone()),
        }),
        _ => Err(usage("port requires CONTAINER [PRIVATE_PORT[/PROTO]]")),
    }
}

fn parse_remove(sub: &str, rest: &[String]) -> Result<Command, UsageError> {
    let ids = match sub {
        "rm" => ids_skipping(
            rest,
            &[
                "-f",
                "--force",
                "-v",
                "--volumes",
                "-l",
                "--link",
                "-fv",
                "-vf",
            ],
            &[],
        )?,
        "stop" => ids_skipping(rest, &[], &["-t", "--time", "--timeout", "-s", "--signal"])?,
        _ => ids_skipping(rest, &[], &["-s", "--signal"])?,
    };
    if ids.is_empty() {
        return Err(usage(format!("{sub} requires at least one container")));
    }
    Ok(Command::Remove { ids })
}

fn parse_logs(rest: &[String]) -> Result<Command, UsageError> {
    let mut tail = None;
    let mut id = None;
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        match flag {
            "--tail" | "-n" => {
                let v = take_value(flag, inline, &mut it)?;
                tail = match v {
                    "all" => None,
                    n => Some(
                        n.parse::<usize>()
                            .map_err(|_| usage(format!("invalid --tail value: {n}")))?,
                    ),
                };
            }
            "-f" | "--follow" | "-t" | "--timestamps" | "--details" => {}
            "--since" | "--until" => {
                take_value(flag, inline, &mut it)?;
            }
            _ if flag.starts_with('-') => return Err(usage(format!("unknown flag: {flag}"))),
            _ if id.is_none() => id = Some(token.clone()),
            _ => return Err(usage("logs takes exactly one container")),
        }
    }
    let id = id.ok_or_else(|| usage("logs requires a container"))?;
    Ok(Command::Logs { id, tail })
}

fn parse_ps(rest: &[String]) -> Result<PsArgs, UsageError> {
    let mut out = PsArgs::default();
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        match flag {
            "-a" | "--all" => out.all = true,
            "-q" | "--quiet" => out.quiet = true,
            "-aq" | "-qa" => {
                out.all = true;
                out.quiet = true;
            }
            "--no-trunc" => out.no_trunc = true,
            "-f" | "--filter" => out
                .filters
                .push(take_value(flag, inline, &mut it)?.to_string()),
            "--format" => out.format = Some(take_value(flag, inline, &mut it)?.to_string()),
            _ => return Err(usage(format!("unknown flag for ps: {flag}"))),
        }
    }
    Ok(out)
}

fn parse_gateway(rest: &[String]) -> Result<GatewayArgs, UsageError> {
    let mut emulator = None;
    let mut function = None;
    let mut port = 0;
    let mut port_file = None;
    let mut region = "us-east-1".to_string();
    let mut parent_pid = None;
    let mut auth = None;
    let mut principal = None;
    let mut status_events = false;
    let mut it = rest.iter();
    while let Some(token) = it.next() {
        let (flag, inline) = split_inline(token);
        match flag {
            "--emulator" => emulator = Some(take_value(flag, inline, &mut it)?.to_string()),
            "--function" => function = Some(take_value(flag, inline, &mut it)?.to_string()),
            "--port" => {
                let v = take_value(flag, inline, &mut it)?;
                port = v
                    .parse()
                    .map_err(|_| usage(format!("invalid --port: {v}")))?;
            }
            "--port-file" => port_file = Some(PathBuf::from(take_value(flag, inline, &mut it)?)),
            "--region" => region = take_value(flag, inline, &mut it)?.to_string(),
            "--auth" => auth = Some(take_value(flag, inline, &mut it)?.to_string()),
            "--principal" => principal = Some(take_value(flag, inline, &mut it)?.to_string()),
            "--status-events" => status_events = true,
            "--parent-pid" => {
                let v = take_value(flag, inline, &mut it)?;
                let pid = v
                    .parse::<i32>()
                    .ok()
                    .filter(|p| *p > 1)
                    .ok_or_else(|| usage(format!("invalid --parent-pid: {v}")))?;
                parent_pid = Some(pid);
            }
            _ => return Err(usage(format!("unknown argument for gateway: {token}"))),
        }
    }
    let emulator = emulator
        .map(|e| e.trim_end_matches('/').to_string())
        .ok_or_else(|| usage("gateway requires --emulator http://127.0.0.1:PORT"))?;
    if !emulator.starts_with("http://") || emulator.len() <= "http://".len() {
        return Err(usage(format!(
            "--emulator must be an http:// endpoint, got {emulator}"
        )));
    }
    let function = function
        .filter(|f| !f.is_empty())
        .ok_or_else(|| usage("gateway requires --function NAME"))?;
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(usage(format!("invalid --region: {region}")));
    }
    let iam = match auth.as_deref() {
        None | Some("NONE") => None,
        Some("AWS_IAM") => {
            let credentials = std::env::var(GATEWAY_CREDENTIALS_ENV).unwrap_or_default();
            let (access_key_id, secret) = credentials
                .split_once(':')
                .filter(|(k, s)| !k.is_empty() && !s.is_empty())
                .ok_or_else(|| {
                    usage(format!(
                        "--auth AWS_IAM needs {GATEWAY_CREDENTIALS_ENV}=ACCESS_KEY_ID:SECRET"
                    ))
                })?;
            Some(IamAuth {
                access_key_id: access_key_id.to_string(),
                secret: secret.to_string(),
                principal: principal
                    .unwrap_or_else(|| "arn:aws:iam::123456789012:root".to_string()),
                identities_file: std::env::var_os(GATEWAY_IDENTITIES_ENV)
                    .filter(|f| !f.is_empty())
                    .map(PathBuf::from),
            })
        }
        Some(other) => return Err(usage(format!("invalid --auth: {other} (NONE or AWS_IAM)"))),
    };
    Ok(GatewayArgs {
        emulator,
        function,
        port,
        port_file,
        region,
        parent_pid,
        status_events,
        iam,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn probes() {
        assert_eq!(parse(&argv(&["info"])), Ok(Command::Info { format: None }));
        assert_eq!(
            parse(&argv(&["info", "--format", "{{json .}}"])),
            Ok(Command::Info {
                format: Some("{{json .}}".into())
            })
        );
        assert_eq!(parse(&argv(&["--version"])), Ok(Command::Version));
        assert_eq!(parse(&argv(&["version"])), Ok(Command::Version));
        assert_eq!(
            parse(&argv(&[
                "network",
                "inspect",
                "bridge",
                "--format",
                "{{range .IPAM.Config}}{{.Gateway}}{{end}}"
            ])),
            Ok(Command::NetworkInspect {
                names: vec!["bridge".into()]
            })
        );
        assert!(parse(&argv(&[])).is_err());
    }

    #[test]
    fn unknown_subcommands_are_ignored() {
        for a in [
            &["pull", "public.ecr.aws/lambda/provided:al2023"][..],
            &["tag", "a", "b"],
            &["image", "inspect", "x"],
            &["network", "ls", "--filter", "label=x"],
            &["network", "rm", "n"],
            &["volume", "ls"],
        ] {
            assert_eq!(parse(&argv(a)), Ok(Command::Ignored), "{a:?}");
        }
    }

    /// The exact shape `start_zip_container` sends.
    #[test]
    fn create_as_fakecloud_sends_it() {
        let cmd = parse(&argv(&[
            "create",
            "-p",
            ":8080",
            "--label",
            "fakecloud-lambda=api",
            "--label",
            "fakecloud-instance=fakecloud-4242",
            "--add-host",
            "host.docker.internal:127.0.0.1",
            "-e",
            "AWS_ENDPOINT_URL=http://host.docker.internal:4566",
            "-e",
            "AWS_ACCESS_KEY_ID",
            "-e",
            "EMPTY=",
            "-e",
            "WITH_EQ=a=b",
            "--tmpfs",
            "/tmp:size=512m,exec",
            "public.ecr.aws/lambda/provided:al2023",
            "bootstrap",
        ]))
        .expect("parses");
        let Command::Create(c) = cmd else {
            panic!("not a create: {cmd:?}");
        };
        assert_eq!(c.image, "public.ecr.aws/lambda/provided:al2023");
        assert_eq!(c.command, vec!["bootstrap"]);
        assert_eq!(c.publish, vec![":8080"]);
        assert_eq!(c.tmpfs, vec!["/tmp:size=512m,exec"]);
        assert_eq!(c.add_hosts, vec!["host.docker.internal:127.0.0.1"]);
        assert_eq!(
            c.labels,
            vec![
                ("fakecloud-lambda".into(), "api".into()),
                ("fakecloud-instance".into(), "fakecloud-4242".into())
            ]
        );
        assert_eq!(
            c.env,
            vec![
                EnvArg::Set(
                    "AWS_ENDPOINT_URL".into(),
                    "http://host.docker.internal:4566".into()
                ),
                EnvArg::Inherit("AWS_ACCESS_KEY_ID".into()),
                EnvArg::Set("EMPTY".into(), "".into()),
                EnvArg::Set("WITH_EQ".into(), "a=b".into()),
            ]
        );
    }

    /// `start_image_container` sends no handler after the image.
    #[test]
    fn create_without_command_and_with_inline_forms() {
        let Ok(Command::Create(c)) = parse(&argv(&[
            "create",
            "--env=A=1",
            "-eB=2",
            "--label=k=v",
            "--rm",
            "--network",
            "host",
            "img:latest",
        ])) else {
            panic!("should parse");
        };
        assert_eq!(c.image, "img:latest");
        assert!(c.command.is_empty());
        assert_eq!(
            c.env,
            vec![
                EnvArg::Set("A".into(), "1".into()),
                EnvArg::Set("B".into(), "2".into())
            ]
        );
        assert_eq!(c.labels, vec![("k".into(), "v".into())]);
        assert_eq!(c.ignored, vec!["--rm", "--network host"]);
    }

    #[test]
    fn create_command_keeps_dashes_and_double_dash_works() {
        let Ok(Command::Create(c)) = parse(&argv(&["create", "img", "h", "-x"])) else {
            panic!("should parse");
        };
        assert_eq!(c.command, vec!["h", "-x"]);
        let Ok(Command::Create(c)) = parse(&argv(&["create", "-e", "A=1", "--", "img", "h"]))
        else {
            panic!("should parse");
        };
        assert_eq!((c.image.as_str(), c.command.len()), ("img", 1));
    }

    #[test]
    fn create_rejects_what_it_cannot_honour() {
        assert!(parse(&argv(&["create", "--env-file", "f", "img"])).is_err());
        assert!(parse(&argv(&["create", "-e"])).is_err());
        assert!(parse(&argv(&["create", "-e", "=x", "img"])).is_err());
        assert!(parse(&argv(&["create", "--label", "a=b"])).is_err());
    }

    #[test]
    fn cp_shapes() {
        assert_eq!(
            parse(&argv(&["cp", "/tmp/.tmpAbc/.", "0123abcd:/var/task"])),
            Ok(Command::CopyIn(CopyArgs {
                src: "/tmp/.tmpAbc/.".into(),
                container: "0123abcd".into(),
                container_path: "/var/task".into(),
            }))
        );
        assert_eq!(
            parse(&argv(&["cp", "id:/codebuild/build/.", "/tmp/out"])),
            Ok(Command::CopyOut(CopyArgs {
                src: "/tmp/out".into(),
                container: "id".into(),
                container_path: "/codebuild/build/.".into(),
            }))
        );
        assert!(parse(&argv(&["cp", "id:/var/task", "other:/tmp"])).is_err());
        assert!(parse(&argv(&["cp", "/a", "/b"])).is_err());
        assert!(parse(&argv(&["cp", "/a", "id:relative"])).is_err());
        assert!(parse(&argv(&["cp", "/a"])).is_err());
    }

    /// What fakecloud's CodeBuild sends to start a build container and run its phases.
    #[test]
    fn build_container_shapes() {
        let Ok(Command::Run(run)) = parse(&argv(&[
            "run",
            "-d",
            "--label",
            "fakecloud-codebuild=web",
            "--label",
            "fakecloud-instance=fakecloud-42",
            "--entrypoint",
            "sleep",
            "public.ecr.aws/docker/library/ubuntu:22.04",
            "4200",
        ])) else {
            panic!("run not parsed");
        };
        assert_eq!(run.entrypoint.as_deref(), Some("sleep"));
        assert_eq!(run.command, vec!["4200".to_string()]);
        assert_eq!(run.labels[0], ("fakecloud-codebuild".into(), "web".into()));
        assert_eq!(
            parse(&argv(&[
                "exec", "-e", "A=1", "-w", "/x", "c1", "sh", "-c", "echo"
            ])),
            Ok(Command::Exec(ExecArgs {
                container: "c1".into(),
                env: vec![EnvArg::Set("A".into(), "1".into())],
                workdir: Some("/x".into()),
                command: vec!["sh".into(), "-c".into(), "echo".into()],
            }))
        );
        assert!(parse(&argv(&["exec", "c1"])).is_err());
        assert!(parse(&argv(&["exec", "--privileged", "c1", "sh"])).is_err());
    }

    #[test]
    fn container_path_splitting() {
        assert_eq!(split_container_path("abc:/opt"), Some(("abc", "/opt")));
        assert_eq!(split_container_path("/local:with-colon"), None);
        assert_eq!(split_container_path("./x:y"), None);
        assert_eq!(split_container_path(":/opt"), None);
        assert_eq!(split_container_path("plain"), None);
    }

    #[test]
    fn lifecycle_commands() {
        assert_eq!(
            parse(&argv(&["start", "abc"])),
            Ok(Command::Start {
                ids: vec!["abc".into()]
            })
        );
        assert_eq!(
            parse(&argv(&["port", "abc", "8080"])),
            Ok(Command::Port {
                id: "abc".into(),
                private_port: Some("8080".into())
            })
        );
        for a in [
            &["rm", "-f", "abc"][..],
            &["stop", "-t", "1", "abc"],
            &["kill", "--signal=KILL", "abc"],
            &["container", "rm", "-f", "abc"],
        ] {
            assert_eq!(
                parse(&argv(a)),
                Ok(Command::Remove {
                    ids: vec!["abc".into()]
                }),
                "{a:?}"
            );
        }
        assert!(parse(&argv(&["rm", "-f"])).is_err());
        assert_eq!(
            parse(&argv(&["logs", "--tail", "200", "abc"])),
            Ok(Command::Logs {
                id: "abc".into(),
                tail: Some(200)
            })
        );
        assert_eq!(
            parse(&argv(&["logs", "--tail=all", "abc"])),
            Ok(Command::Logs {
                id: "abc".into(),
                tail: None
            })
        );
        assert!(parse(&argv(&["logs", "--tail", "x", "abc"])).is_err());
        assert_eq!(
            parse(&argv(&["serve", "abc"])),
            Ok(Command::Serve { id: "abc".into() })
        );
    }

    /// The reaper's listing call.
    #[test]
    fn ps_as_the_reaper_sends_it() {
        assert_eq!(
            parse(&argv(&[
                "ps",
                "-a",
                "--filter",
                "label=fakecloud-instance",
                "--format",
                "{{.ID}} {{.Label \"fakecloud-instance\"}}"
            ])),
            Ok(Command::Ps(PsArgs {
                all: true,
                quiet: false,
                no_trunc: false,
                filters: vec!["label=fakecloud-instance".into()],
                format: Some("{{.ID}} {{.Label \"fakecloud-instance\"}}".into()),
            }))
        );
    }

    #[test]
    fn gateway() {
        assert_eq!(
            parse(&argv(&[
                "gateway",
                "--emulator",
                "http://127.0.0.1:4566/",
                "--function=api",
                "--port",
                "0",
                "--port-file",
                "/tmp/p",
                "--region=eu-west-2",
                "--parent-pid",
                "42",
            ])),
            Ok(Command::Gateway(GatewayArgs {
                emulator: "http://127.0.0.1:4566".into(),
                function: "api".into(),
                port: 0,
                port_file: Some("/tmp/p".into()),
                region: "eu-west-2".into(),
                parent_pid: Some(42),
                status_events: false,
                iam: None,
            }))
        );
        let Ok(Command::Gateway(defaults)) = parse(&argv(&[
            "gateway",
            "--emulator",
            "http://127.0.0.1:1",
            "--function",
            "f",
        ])) else {
            panic!("gateway with defaults");
        };
        assert_eq!(defaults.region, "us-east-1");
        assert_eq!(
            (defaults.port, defaults.port_file, defaults.parent_pid),
            (0, None, None)
        );
        for bad in [
            &["gateway", "--function", "f"][..],
            &["gateway", "--emulator", "http://127.0.0.1:1"],
            &["gateway", "--emulator", "https://x", "--function", "f"],
            &["gateway", "--emulator", "http://x", "--function"],
        ] {
            assert!(parse(&argv(bad)).is_err(), "{bad:?}");
        }
        for extra in [
            &["--port", "70000"][..],
            &["--bogus"],
            &["--region", "a/b"],
            &["--parent-pid", "1"],
        ] {
            let mut bad = vec!["gateway", "--emulator", "http://x", "--function", "f"];
            bad.extend_from_slice(extra);
            assert!(parse(&argv(&bad)).is_err(), "{bad:?}");
        }
    }
}
