//! Headless Chromium (Debian's `chromium` package), driven over the DevTools protocol through
//! a pipe (`--remote-debugging-pipe`: commands in on fd 3, answers out on fd 4, each message
//! ended by a NUL): no WebDriver, no websocket, nothing listening.
//!
//! Enough for the console's tests: open a URL, run JavaScript in the page, click, wait for a
//! condition, take a screenshot.

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// How long one DevTools command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// A headless Chromium with one page open.
pub struct Browser {
    child: Child,
    to_browser: std::io::PipeWriter,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    profile: PathBuf,
}

/// The Chromium binary: `$CHROMIUM`, else `chromium` (Debian) or `chromium-browser` on PATH.
pub fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if let Some(dir) = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .find(|d| d.join(name).is_file())
        {
            return dir.join(name);
        }
    }
    panic!("no Chromium: install Debian's chromium package (scripts/install-tools does)");
}

impl Browser {
    /// Start Chromium headless with a fresh profile and a 1400×900 page.
    pub fn launch() -> Self {
        let profile = std::env::temp_dir().join(crate::unique("pipewright-chromium"));
        std::fs::create_dir_all(&profile).expect("a profile folder");
        let (from_browser, browser_writes) = std::io::pipe().expect("a pipe");
        let (browser_reads, to_browser) = std::io::pipe().expect("a pipe");
        let (r, w) = (browser_reads.as_raw_fd(), browser_writes.as_raw_fd());
        let mut cmd = Command::new(chromium());
        cmd.args([
            "--headless=new",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-features=Translate,MediaRouter,OptimizationHints",
            "--window-size=1400,900",
        ])
        .arg(format!("--user-data-dir={}", profile.display()));
        // Chromium's own sandbox refuses to start as root; the tests may run as root.
        if unsafe { libc::geteuid() } == 0 {
            cmd.arg("--no-sandbox");
        }
        cmd.arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first (either may be 3 or 4), then onto 3 and 4 without
                // close-on-exec.
                let r2 = libc::fcntl(r, libc::F_DUPFD, 10);
                let w2 = libc::fcntl(w, libc::F_DUPFD, 10);
                if r2 < 0 || w2 < 0 || libc::dup2(r2, 3) < 0 || libc::dup2(w2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start chromium");
        drop((browser_reads, browser_writes));
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from_browser);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                            if tx.send(v).is_err() {
                                return;
                            }
                        }
                    }
                }
            }
        });
        let mut browser = Self {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: String::new(),
            profile,
        };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a session")
            .to_string();
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        browser
    }

    /// One DevTools command (to the browser, or to `session`); its result, or a panic with
    /// the error.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.try_call(session, method, params)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    /// [`Browser::call`], the protocol's error returned (a page between two documents answers
    /// some commands with one).
    fn try_call(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .unwrap_or_else(|e| panic!("{method}: chromium is gone: {e}"));
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from_browser.recv_timeout(left) {
                Ok(m) if m["id"] == json!(id) => {
                    if let Some(e) = m.get("error") {
                        return Err(e.to_string());
                    }
                    return Ok(m["result"].clone());
                }
                Ok(_) => {} // an event, or an answer nobody waits for
                Err(RecvTimeoutError::Timeout) => {
                    panic!("{method}: no answer in {COMMAND_TIMEOUT:?}")
                }
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium closed the pipe"),
            }
        }
    }

    /// A command to the page.
    pub fn page(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    /// Evaluate `expression` in the page (promises awaited); its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        self.try_eval(expression)
            .unwrap_or_else(|e| panic!("{expression}: {e}"))
    }

    /// [`Browser::eval`], an exception or a protocol error returned.
    fn try_eval(&mut self, expression: &str) -> Result<Value, String> {
        let session = self.session.clone();
        let r = self.try_call(
            Some(&session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(e.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Poll `expression` every 200 ms until it is truthy (not false, null, 0 or ""); its value.
    /// Panics naming `what` after `timeout`, with the page's text.
    pub fn wait_for(&mut self, what: &str, expression: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            // Between two documents the page may not answer: that is a no.
            let v = self.try_eval(expression).unwrap_or(Value::Null);
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!(
                    "gave up after {timeout:?} waiting for {what}; the page says:\n{}",
                    text.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Run `action` (JavaScript that navigates: a link, a form) and wait for the new document.
    pub fn navigating(&mut self, action: &str) {
        self.eval("window.__pipewrightOldDocument = true");
        // The navigation may take the page away before the answer: only a thrown error counts.
        if let Err(e) = self.try_eval(action) {
            assert!(!e.contains("exception"), "{action}: {e}");
        }
        self.wait_for(
            "the next page",
            "!window.__pipewrightOldDocument && document.readyState === 'complete'",
            Duration::from_secs(30),
        );
    }

    /// Open `url` and wait until it has loaded.
    pub fn goto(&mut self, url: &str) {
        let action = format!("location.href = {}", json!(url));
        self.navigating(&action);
    }

    /// Click the element `selector` picks (it must exist), following any navigation.
    pub fn click(&mut self, selector: &str) {
        let action = format!(
            "(() => {{ const e = document.querySelector({s}); if (!e) throw new Error('nothing matches ' + {s}); e.click(); }})()",
            s = json!(selector)
        );
        self.navigating(&action);
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the page as shown, written to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.page(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("PNG data"))
            .expect("base64");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("the screenshot folder");
        }
        std::fs::write(path, png).expect("write the screenshot");
    }

    /// Show the page as with the system's dark (or light) appearance.
    pub fn dark(&mut self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.page(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": value}]}),
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
