//! Drives the real binary the way fakecloud does (create, cp, start, port,
//! POST an invocation, logs, rm) with a shell-script custom runtime that
//! speaks the Lambda Runtime API through curl.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_pipewright-lambda-host");

/// A custom runtime: echoes the event back, unless the event asks it to
/// fail, exit, hang or report its environment.
const BOOTSTRAP: &str = r#"#!/bin/sh
api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"
headers="$TMPDIR/next-headers"
echo "bootstrap up, handler=$_HANDLER"
while true; do
  event=$(curl -sSf -D "$headers" "$api/invocation/next") || exit 1
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | cut -d: -f2 | tr -d ' \r')
  case "$event" in
    *'"action":"error"'*)
      curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Unhandled' \
        --data-binary '{"errorType":"TestError","errorMessage":"boom"}' \
        "$api/invocation/$id/error" ;;
    *'"action":"exit"'*)
      echo "exiting on request"
      exit 7 ;;
    *'"action":"sleep"'*)
      sleep 30 ;;
    *'"action":"env"'*)
      arn=$(grep -i '^lambda-runtime-invoked-function-arn:' "$headers" | cut -d' ' -f2 | tr -d '\r')
      curl -sS -o /dev/null -X POST --data-binary "{\"endpoint\":\"$AWS_ENDPOINT_URL\",\"queue\":\"$QUEUE_URL\",\"region\":\"$AWS_REGION\",\"secret\":\"$AWS_SECRET_ACCESS_KEY\",\"task\":\"$LAMBDA_TASK_ROOT\",\"cwd\":\"$(pwd)\",\"handler\":\"$_HANDLER\",\"metadata\":\"$AWS_EC2_METADATA_DISABLED\",\"arn\":\"$arn\"}" \
        "$api/invocation/$id/response" ;;
    *)
      echo "echoing $id"
      curl -sS -o /dev/null -X POST --data-binary "$event" "$api/invocation/$id/response" ;;
  esac
done
"#;

/// A state root of its own; removes every container it made, then itself.
struct Sandbox {
    root: PathBuf,
    ids: Vec<String>,
}

impl Sandbox {
    fn new(name: &str) -> Sandbox {
        let root =
            std::env::temp_dir().join(format!("lambda-host-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).expect("state root");
        Sandbox {
            root,
            ids: Vec::new(),
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        self.cli_with_env(args, &[])
    }

    fn cli_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("PIPEWRIGHT_LAMBDA_HOST_DIR", &self.root)
            .envs(env.iter().copied())
            .output()
            .expect("run the binary")
    }

    /// Run and require success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// What fakecloud's `start_zip_container` does, up to the port lookup.
    fn launch(&mut self, timeout_secs: u32) -> Function {
        let code = self.root.join(format!("code-{}", self.ids.len()));
        std::fs::create_dir_all(&code).expect("code dir");
        let bootstrap = code.join("bootstrap");
        std::fs::write(&bootstrap, BOOTSTRAP).expect("write bootstrap");
        std::fs::set_permissions(&bootstrap, std::fs::Permissions::from_mode(0o755))
            .expect("chmod");

        let timeout = format!("AWS_LAMBDA_FUNCTION_TIMEOUT={timeout_secs}");
        let out = self.cli_with_env(
            &[
                "create",
                "-p",
                ":8080",
                "--label",
                "fakecloud-lambda=echo",
                "--label",
                "fakecloud-instance=fakecloud-1",
                "--add-host",
                "host.docker.internal:127.0.0.1",
                "-e",
                "AWS_ENDPOINT_URL=http://host.docker.internal:4566",
                "-e",
                "QUEUE_URL=http://host.containers.internal:4566/000000000000/q",
                "-e",
                "AWS_REGION=eu-west-2",
                "-e",
                "AWS_DEFAULT_REGION=eu-west-2",
                "-e",
                "AWS_LAMBDA_FUNCTION_NAME=echo",
                "-e",
                &timeout,
                "-e",
                "AWS_SECRET_ACCESS_KEY",
                "-e",
                "AWS_SESSION_TOKEN",
                "--tmpfs",
                "/tmp:size=512m,exec",
                "public.ecr.aws/lambda/provided:al2023",
                "bootstrap",
            ],
            &[("AWS_SECRET_ACCESS_KEY", "s3cr3t")],
        );
        assert!(
            out.status.success(),
            "create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(id.len() >= 12 && id.chars().all(|c| c.is_ascii_hexdigit()));
        self.ids.push(id.clone());

        let src = format!("{}/.", code.display());
        self.ok(&["cp", &src, &format!("{id}:/var/task")]);
        self.ok(&["cp", &src, &format!("{id}:/var/runtime")]);
        self.ok(&["start", &id]);
        let port_line = self.ok(&["port", &id, "8080"]);
        let port = port_line
            .trim()
            .strip_prefix("127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected port output {port_line:?}"));
        Function { id, port }
    }

    fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for id in &self.ids {
            let _ = self.cli(&["rm", "-f", id]);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

struct Function {
    id: String,
    port: u16,
}

impl Function {
    /// POST an invocation as fakecloud does; returns (status, body).
    fn invoke(&self, payload: &str) -> (u16, String) {
        invoke(self.port, payload)
    }

    fn invoke_json(&self, payload: &str) -> Value {
        let (status, body) = self.invoke(payload);
        assert_eq!(status, 200, "body: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
    }
}

fn invoke(port: u16, payload: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    write!(
        s,
        "POST /2015-03-31/functions/function/invocations HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        payload.len()
    )
    .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    (status, body.to_string())
}

fn pid_in(dir: &Path, file: &str) -> Option<i32> {
    std::fs::read_to_string(dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn alive(pid: i32) -> bool {
    // `kill -0` through the shell keeps the test free of libc.
    let probed = Command::new("kill")
        .args(["-0", &pid.to_string()])
        .output()
        .is_ok_and(|o| o.status.success());
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false);
    probed && !zombie
}

fn wait_dead(pid: i32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn probes_look_like_docker() {
    let sb = Sandbox::new("probes");
    assert!(sb.cli(&["info"]).status.success());
    assert!(sb.ok(&["--version"]).starts_with("Docker version"));
    assert_eq!(
        sb.ok(&[
            "network",
            "inspect",
            "bridge",
            "--format",
            "{{range .IPAM.Config}}{{.Gateway}}{{end}}"
        ])
        .trim(),
        "127.0.0.1"
    );
    assert!(sb.cli(&["pull", "some/image"]).status.success());
    assert!(sb.cli(&["rm", "-f", "0000deadbeef"]).status.success());
    assert!(!sb.cli(&["create", "--bogus", "img"]).status.success());
    let log = std::fs::read_to_string(sb.root.join("host.log")).expect("host log");
    assert!(log.contains("ignored: [\"pull\""), "{log}");
}

#[test]
fn echo_env_and_teardown() {
    let mut sb = Sandbox::new("echo");
    let f = sb.launch(30);
    let dir = sb.container_dir(&f.id);
    assert_eq!(
        std::fs::metadata(dir.join("task/bootstrap"))
            .expect("copied")
            .permissions()
            .mode()
            & 0o111,
        0o111,
        "bootstrap must stay executable"
    );

    let reply = f.invoke_json(r#"{"hello":"world"}"#);
    assert_eq!(reply, serde_json::json!({"hello": "world"}));

    // The environment: aliases rewritten, `-e KEY` taken from the CLI's
    // own environment, Runtime API wiring in place.
    let env = f.invoke_json(r#"{"action":"env"}"#);
    assert_eq!(env["endpoint"], "http://127.0.0.1:4566");
    assert_eq!(env["queue"], "http://127.0.0.1:4566/000000000000/q");
    assert_eq!(env["region"], "eu-west-2");
    assert_eq!(env["secret"], "s3cr3t");
    assert_eq!(env["handler"], "bootstrap");
    assert_eq!(env["metadata"], "true");
    assert_eq!(
        env["arn"],
        "arn:aws:lambda:eu-west-2:123456789012:function:echo"
    );
    // In its sandbox (the default) the function sees Lambda's own path.
    let task = if std::env::var("PIPEWRIGHT_LAMBDA_SANDBOX").as_deref() == Ok("off") {
        dir.join("task").display().to_string()
    } else {
        "/var/task".to_string()
    };
    assert_eq!(env["task"], task);
    assert_eq!(env["cwd"], task);

    // Concurrent invocations are served one after the other, each getting
    // its own answer.
    let port = f.port;
    let workers: Vec<_> = (0..4)
        .map(|i| std::thread::spawn(move || invoke(port, &format!(r#"{{"n":{i}}}"#))))
        .collect();
    for (i, w) in workers.into_iter().enumerate() {
        let (status, body) = w.join().expect("worker");
        assert_eq!(status, 200);
        assert_eq!(body, format!(r#"{{"n":{i}}}"#));
    }

    let logs = sb.ok(&["logs", "--tail", "200", &f.id]);
    assert!(logs.contains("bootstrap up, handler=bootstrap"), "{logs}");
    assert!(logs.contains("START RequestId: "), "{logs}");
    assert_eq!(sb.ok(&["logs", "--tail", "1", &f.id]).lines().count(), 1);

    let listed = sb.ok(&[
        "ps",
        "-a",
        "--filter",
        "label=fakecloud-instance",
        "--format",
        "{{.ID}} {{.Label \"fakecloud-instance\"}}",
    ]);
    assert_eq!(listed.trim(), format!("{} fakecloud-1", &f.id[..12]));

    let serve_pid = pid_in(&dir, "serve.pid").expect("serve pid");
    let bootstrap_pid = pid_in(&dir, "bootstrap.pid").expect("bootstrap pid");
    assert!(alive(serve_pid) && alive(bootstrap_pid));

    sb.ok(&["rm", "-f", &f.id]);
    assert!(wait_dead(serve_pid), "server {serve_pid} survived rm");
    assert!(
        wait_dead(bootstrap_pid),
        "bootstrap {bootstrap_pid} survived rm"
    );
    assert!(!dir.exists());
    assert!(TcpStream::connect(("127.0.0.1", f.port)).is_err());
    // Gone already: still fine.
    sb.ok(&["rm", "-f", &f.id]);
}

#[test]
fn function_error_comes_back_as_error_json() {
    let mut sb = Sandbox::new("error");
    let f = sb.launch(30);
    let err = f.invoke_json(r#"{"action":"error"}"#);
    assert_eq!(err["errorType"], "TestError");
    assert_eq!(err["errorMessage"], "boom");
    // The runtime carries on.
    assert_eq!(f.invoke_json(r#"{"after":1}"#)["after"], 1);
}

#[test]
fn bootstrap_exit_mid_invocation_then_restart() {
    let mut sb = Sandbox::new("exit");
    let f = sb.launch(30);
    let first_pid = {
        assert_eq!(f.invoke_json(r#"{"warm":true}"#)["warm"], true);
        pid_in(&sb.container_dir(&f.id), "bootstrap.pid").expect("bootstrap pid")
    };
    let err = f.invoke_json(r#"{"action":"exit"}"#);
    assert_eq!(err["errorType"], "Runtime.ExitError");
    let msg = err["errorMessage"].as_str().unwrap_or_default();
    assert!(msg.contains("exit status 7"), "{msg}");
    assert!(!alive(first_pid));

    // Restarted lazily by the next invocation.
    assert_eq!(f.invoke_json(r#"{"again":2}"#)["again"], 2);
    let second_pid = pid_in(&sb.container_dir(&f.id), "bootstrap.pid").expect("new pid");
    assert_ne!(first_pid, second_pid);
}

#[test]
fn timeout_kills_and_restarts_the_bootstrap() {
    let mut sb = Sandbox::new("timeout");
    let f = sb.launch(1);
    let started = Instant::now();
    let err = f.invoke_json(r#"{"action":"sleep"}"#);
    assert_eq!(err["errorType"], "Sandbox.Timedout");
    assert_eq!(err["errorMessage"], "Task timed out after 1 seconds");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        !sb.container_dir(&f.id).join("bootstrap.pid").exists(),
        "the timed-out bootstrap must be stopped"
    );
    assert_eq!(f.invoke_json(r#"{"fresh":true}"#)["fresh"], true);
}

#[test]
fn missing_bootstrap_is_an_error_not_a_hang() {
    let sb = Sandbox::new("nobootstrap");
    let id = sb.ok(&["create", "-e", "AWS_LAMBDA_FUNCTION_TIMEOUT=5", "img", "h"]);
    let id = id.trim().to_string();
    let mut sb = sb;
    sb.ids.push(id.clone());
    sb.ok(&["start", &id]);
    let port: u16 = sb
        .ok(&["port", &id, "8080"])
        .trim()
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let (status, body) = invoke(port, "{}");
    assert_eq!(status, 200);
    let err: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(err["errorType"], "Runtime.InvalidEntrypoint");
}

/// What fakecloud's CodeBuild does with a build container: `run` one that sleeps, copy the
/// source in, `exec` the phases (in a sandbox whose exit status and output are the command's),
/// copy the artifacts out, list it by label, `rm` it.
#[test]
fn build_container_runs_commands_in_its_own_sandbox() {
    if Command::new("bwrap").arg("--version").output().is_err() {
        eprintln!("bubblewrap is not installed: skipped");
        return;
    }
    let sb = Sandbox::new("build");
    let id = sb
        .ok(&[
            "run",
            "-d",
            "--label",
            "fakecloud-codebuild=web",
            "--label",
            "fakecloud-instance=fakecloud-1",
            "--entrypoint",
            "sleep",
            "public.ecr.aws/docker/library/ubuntu:22.04",
            "4200",
        ])
        .trim()
        .to_string();
    let source = sb.root.join("source");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("input.txt"), "from the source\n").unwrap();
    sb.ok(&["exec", &id, "mkdir", "-p", "/codebuild/build"]);
    sb.ok(&[
        "cp",
        &format!("{}/.", source.display()),
        &format!("{id}:/codebuild/build"),
    ]);

    let script = "cd /codebuild/build && cat input.txt && echo \"$GREETING\" > out.txt \
                  && ls /proc | grep -c '^[0-9]' && ls /work /root/.cargo 2>&1 | head -1";
    let out = sb.cli(&["exec", "-e", "GREETING=hello", &id, "sh", "-c", script]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "from the source");
    let processes: usize = lines[1].parse().unwrap();
    assert!(processes <= 4, "the build sees {processes} processes");
    assert!(
        lines[2].contains("No such file"),
        "the workspace is out of sight: {text}"
    );

    let failed = sb.cli(&["exec", &id, "sh", "-c", "echo before; exit 3"]);
    assert_eq!(
        failed.status.code(),
        Some(3),
        "the command's exit status is exec's"
    );
    assert_eq!(String::from_utf8_lossy(&failed.stdout), "before\n");

    let outside = sb.root.join("artifacts");
    sb.ok(&[
        "cp",
        &format!("{id}:/codebuild/build/."),
        outside.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(outside.join("out.txt")).unwrap(),
        "hello\n"
    );

    // A link a build makes to a host folder is neither followed nor copied out.
    let secret_dir = sb.root.join("host-secrets");
    std::fs::create_dir_all(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("key"), "host secret").unwrap();
    let link = format!(
        "ln -s {dir} /codebuild/build/outside && ln -s {dir}/key /codebuild/build/key-link",
        dir = secret_dir.display()
    );
    sb.ok(&["exec", &id, "sh", "-c", &link]);
    let escaped = sb.cli(&[
        "cp",
        &format!("{id}:/codebuild/build/outside/."),
        outside.join("x").to_str().unwrap(),
    ]);
    assert!(
        !escaped.status.success(),
        "a copy through a link to the host is refused"
    );
    assert!(String::from_utf8_lossy(&escaped.stderr).contains("leads out of the container"));
    let again = sb.root.join("artifacts-again");
    sb.ok(&[
        "cp",
        &format!("{id}:/codebuild/build/."),
        again.to_str().unwrap(),
    ]);
    assert!(again.join("out.txt").exists());
    assert!(
        !again.join("key-link").exists() && !again.join("outside").exists(),
        "links are left out"
    );

    let listed = sb.ok(&[
        "ps",
        "-a",
        "--filter",
        "label=fakecloud-codebuild",
        "--format",
        "{{.ID}} {{.Label \"fakecloud-instance\"}}",
    ]);
    assert_eq!(listed.trim(), format!("{} fakecloud-1", &id[..12]));
    sb.ok(&["rm", "-f", &id]);
    assert!(
        !sb.root.join(&id).exists(),
        "rm removes the container's folders"
    );
    assert!(sb.cli(&["exec", &id, "true"]).status.code() != Some(0));
}
