//! Who may use the console: whoever opened the URL `pipewright console` printed.
//!
//! The URL carries a one-time token. Its first use is exchanged for a session cookie (HttpOnly,
//! SameSite=Lax: sent when a link in a mail or a chat opens a page, never with another site's
//! form post) and a redirect to the same page without the token, so the token never stays
//! in the address bar or the history; a second use is refused. Every other request needs the
//! cookie. Both are compared in constant time.
//!
//! The page is only on 127.0.0.1, but a web page the user visits can still reach it: the Host
//! header must name the console itself (no DNS rebinding), and a form post must come from the
//! console's own origin (no cross-site request forgery; the SameSite cookie already keeps it
//! out). A GET changes nothing, whoever links to it.

use std::sync::Mutex;

use subtle::ConstantTimeEq;

/// The console's secrets.
pub struct Auth {
    port: u16,
    /// The one-time token, until it is used.
    token: Mutex<Option<String>>,
    /// Sessions the token opened.
    sessions: Mutex<Vec<String>>,
}

/// What a request may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It carries a session cookie: go on.
    Session,
    /// It carries the unused one-time token: set this session cookie and redirect.
    Opened {
        /// The new session's id.
        session: String,
    },
    /// Refused, and why (shown on the 401 page).
    Refused(&'static str),
}

/// 32 random bytes, hex.
fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the system's random number generator");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Auth {
    /// Secrets for a console on `port`, and its one-time token.
    pub fn new(port: u16) -> (Self, String) {
        let token = secret();
        (
            Self {
                port,
                token: Mutex::new(Some(token.clone())),
                sessions: Mutex::new(Vec::new()),
            },
            token,
        )
    }

    /// The session cookie's name: one per port, so two consoles do not log each other out.
    pub fn cookie_name(&self) -> String {
        format!("pipewright_console_{}", self.port)
    }

    /// The `Set-Cookie` value for `session`.
    pub fn set_cookie(&self, session: &str) -> String {
        format!(
            "{}={session}; Path=/; HttpOnly; SameSite=Lax",
            self.cookie_name()
        )
    }

    /// True when `host` (the Host header) names this console.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        let port = self.port;
        matches!(host, Some(h) if h == format!("127.0.0.1:{port}") || h == format!("localhost:{port}"))
    }

    /// True when `origin` (the Origin header of a form post) is this console's.
    pub fn origin_allowed(&self, origin: Option<&str>) -> bool {
        let port = self.port;
        match origin {
            // Browsers send Origin with every POST; a client that sends none is not a browser
            // another site could drive.
            None => true,
            Some(o) => {
                o == format!("http://127.0.0.1:{port}") || o == format!("http://localhost:{port}")
            }
        }
    }

    /// Judge a request by its `Cookie` header and its `token` query parameter.
    pub fn check(&self, cookie_header: Option<&str>, token: Option<&str>) -> Verdict {
        let name = self.cookie_name();
        if let Some(value) = cookie_header.and_then(|h| cookie_value(h, &name)) {
            let sessions = self.sessions.lock().expect("sessions");
            if sessions.iter().any(|s| same(s, value)) {
                return Verdict::Session;
            }
        }
        let Some(given) = token else {
            return Verdict::Refused("this console needs the link `pipewright console` printed");
        };
        let mut unused = self.token.lock().expect("token");
        match unused.as_deref() {
            Some(t) if same(t, given) => {
                *unused = None;
                let session = secret();
                self.sessions
                    .lock()
                    .expect("sessions")
                    .push(session.clone());
                Verdict::Opened { session }
            }
            Some(_) => Verdict::Refused("the token in this link is not this console's"),
            None => Verdict::Refused(
                "the link's token was used already (it works once); run `pipewright console` again for a new link",
            ),
        }
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_opens_one_session_once_and_the_cookie_keeps_it() {
        let (auth, token) = Auth::new(7000);
        assert_eq!(token.len(), 64);
        let Verdict::Opened { session } = auth.check(None, Some(&token)) else {
            panic!("the token opens a session");
        };
        let cookie = format!("other=1; {}={session}", auth.cookie_name());
        assert_eq!(auth.check(Some(&cookie), None), Verdict::Session);
        assert!(
            matches!(auth.check(None, Some(&token)), Verdict::Refused(why) if why.contains("used already"))
        );
        assert!(matches!(auth.check(None, None), Verdict::Refused(_)));
        let forged = format!("{}={}", auth.cookie_name(), "0".repeat(64));
        assert!(matches!(
            auth.check(Some(&forged), None),
            Verdict::Refused(_)
        ));
    }

    #[test]
    fn a_wrong_token_is_refused_and_leaves_the_right_one_usable() {
        let (auth, token) = Auth::new(7000);
        assert!(matches!(
            auth.check(None, Some("nope")),
            Verdict::Refused(_)
        ));
        assert!(matches!(
            auth.check(None, Some(&token)),
            Verdict::Opened { .. }
        ));
    }

    #[test]
    fn only_the_consoles_own_host_and_origin_pass() {
        let (auth, _) = Auth::new(7000);
        assert!(auth.host_allowed(Some("127.0.0.1:7000")));
        assert!(auth.host_allowed(Some("localhost:7000")));
        assert!(!auth.host_allowed(Some("evil.example:7000")));
        assert!(!auth.host_allowed(Some("127.0.0.1:7001")));
        assert!(!auth.host_allowed(None));
        assert!(auth.origin_allowed(Some("http://127.0.0.1:7000")));
        assert!(!auth.origin_allowed(Some("http://evil.example")));
        assert!(!auth.origin_allowed(Some("null")));
    }
}
