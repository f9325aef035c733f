//! The pages, drawn from the control plane's answers. Pure: data in, HTML out.
//!
//! Each page is a [`Page`]: its title, where it sits (breadcrumbs) and its main part. The main
//! part alone is what the live refresh fetches (`X-Pipewright-Fragment: main`).

pub mod execution;
pub mod history;
pub mod list;
pub mod pipeline;

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::text::{status_class, status_words};

/// The style sheet and the live-refresh script, compiled in.
pub const CSS: &str = include_str!("../../assets/console.css");
/// See [`CSS`].
pub const JS: &str = include_str!("../../assets/console.js");

/// A drawn page.
pub struct Page {
    /// The `<title>` (after "Pipewright · ").
    pub title: String,
    /// Breadcrumbs after "Pipelines": (text, link).
    pub crumbs: Vec<(String, String)>,
    /// The main part.
    pub main: Markup,
    /// Every how many seconds the main part refreshes itself (pages that show something
    /// that changes), or `None`.
    pub refresh: Option<u32>,
}

/// Messages carried back to a page after a form was sent (`?notice=` / `?error=`).
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Flash {
    /// What was done.
    pub notice: Option<String>,
    /// What the control plane refused, and why.
    pub error: Option<String>,
}

impl Flash {
    /// The banners.
    pub fn render(&self) -> Markup {
        html! {
            @if let Some(n) = self.notice.as_deref().filter(|n| !n.is_empty()) {
                p.notice role="status" { (n) }
            }
            @if let Some(e) = self.error.as_deref().filter(|e| !e.is_empty()) {
                p.problem role="alert" { (e) }
            }
        }
    }
}

/// The whole document around `page`.
pub fn document(page: &Page, endpoint: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                title { "Pipewright · " (page.title) }
                link rel="stylesheet" href="/static/console.css";
                @if let Some(every) = page.refresh {
                    // Without JavaScript the page reloads itself instead.
                    noscript { meta http-equiv="refresh" content=(every.max(5)); }
                }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header.top {
                    nav aria-label="Breadcrumbs" {
                        a.brand href="/" { "Pipewright" }
                        span.sep aria-hidden="true" { "/" }
                        a href="/" { "Pipelines" }
                        @for (text, link) in &page.crumbs {
                            span.sep aria-hidden="true" { "/" }
                            a href=(link) { (text) }
                        }
                    }
                    span.endpoint title="The control plane this console calls, with your credentials" { (endpoint) }
                    @if page.refresh.is_some() {
                        span #live.live aria-live="polite" { "live" }
                    }
                }
                main #main data-refresh=(page.refresh.unwrap_or(0)) {
                    (page.main)
                }
                script src="/static/console.js" {}
            }
        }
    }
}

/// A status as a coloured badge, its words readable without the colour.
pub fn badge(status: &str) -> Markup {
    html! {
        span class={ "badge " (status_class(status)) } data-status=(status) { (status_words(status)) }
    }
}

/// The page a control-plane error (or any failure to draw one) becomes: what was asked, what
/// came back, and what to try.
pub fn problem_page(title: &str, kind: &str, message: &str) -> Page {
    Page {
        title: title.to_string(),
        crumbs: Vec::new(),
        refresh: None,
        main: html! {
            h1 { (title) }
            div.problem role="alert" {
                p { strong { (kind) } ": " (message) }
            }
            p { a href="/" { "Back to the pipelines" } }
        },
    }
}

/// The 401 page.
pub fn refused_page(why: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="color-scheme" content="light dark";
                title { "Pipewright · not signed in" }
                style { (PreEscaped(CSS)) }
            }
            body {
                main #main {
                    h1 { "Not signed in" }
                    div.problem role="alert" { p { (why) } }
                    p { "Run " code { "pipewright console" } " and open the link it prints." }
                }
            }
        }
    }
}

/// A form that posts `fields` to `action` with one submit button: the console's one way of
/// acting (readable and usable without JavaScript).
pub fn button_form(action: &str, fields: &[(&str, &str)], label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
            button type="submit" class=(class) { (label) }
        }
    }
}
