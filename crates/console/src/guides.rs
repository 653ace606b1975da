//! The guides for each user (`docs/guides/{en,zh-CN}/*.md`, issue 16) served at `/docs`
//! (public, no sign-in) in the reader's language, rendered from Markdown with raw HTML escaped,
//! and the screenshots the test suite captured for them at `/docs/screens/{file}`. Everything
//! is embedded at compile time, so an installed binary serves the guides without the sources.

use crate::Console;
use crate::i18n::{Lang, Tr};
use crate::pages::{Chrome, chrome, error_page, lang_of, render};
use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, html};

/// A guide: its address under `/docs/` and its Markdown in English and in Chinese.
#[derive(Debug)]
pub struct Guide {
    pub slug: &'static str,
    pub en: &'static str,
    pub zh: &'static str,
}

macro_rules! guide {
    ($slug:literal) => {
        Guide {
            slug: $slug,
            en: include_str!(concat!("../../../docs/guides/en/", $slug, ".md")),
            zh: include_str!(concat!("../../../docs/guides/zh-CN/", $slug, ".md")),
        }
    };
}

/// The guides, in the order of the index.
pub const GUIDES: &[Guide] = &[
    guide!("merchant"),
    guide!("cashier"),
    guide!("cardholder"),
    guide!("operations"),
    guide!("integrator"),
    guide!("glossary"),
];

/// The screenshots of `docs/guides/screens/` (listed by the build script), by file name.
pub const SCREENS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/screens.rs"));

impl Guide {
    pub fn markdown(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::En => self.en,
            Lang::ZhCn => self.zh,
        }
    }

    /// The guide's first heading.
    pub fn title(&self, lang: Lang) -> &'static str {
        self.markdown(lang)
            .lines()
            .find_map(|line| line.strip_prefix("# "))
            .map(str::trim)
            .unwrap_or(self.slug)
    }
}

pub fn find(slug: &str) -> Option<&'static Guide> {
    GUIDES.iter().find(|guide| guide.slug == slug)
}

/// Where a relative link of a guide leads in the console: another guide (`cashier.md#pin` →
/// `/docs/cashier#pin`) or a screenshot (`../screens/x.png` → `/docs/screens/x.png`). `None`
/// for a link the console does not serve (the reference docs, the sources): it shows as text.
pub fn console_href(url: &str) -> Option<String> {
    if url.starts_with('#') || url.starts_with("https://") || url.starts_with("http://") {
        return Some(url.to_owned());
    }
    if url.contains("://") || url.starts_with("//") || url.starts_with("mailto:") {
        return None;
    }
    let (path, fragment) = match url.split_once('#') {
        Some((path, fragment)) => (path, format!("#{fragment}")),
        None => (url, String::new()),
    };
    if let Some(file) = path.strip_prefix("../screens/") {
        return SCREENS
            .iter()
            .any(|(name, _)| *name == file)
            .then(|| format!("/docs/screens/{file}"));
    }
    let slug = path
        .strip_prefix("./")
        .unwrap_or(path)
        .strip_suffix(".md")?;
    find(slug).map(|guide| format!("/docs/{}{fragment}", guide.slug))
}

/// The guide's Markdown as HTML: raw HTML shows as text, links are rewritten for the console
/// ([`console_href`]) or dropped to their text, and an image's address is checked the same way.
pub fn to_html(markdown: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_HEADING_ATTRIBUTES);
    // Each link: whether it was kept, so its end is kept or dropped alike.
    let mut links: Vec<bool> = Vec::new();
    let events = Parser::new_ext(markdown, options).filter_map(|event| match event {
        Event::Html(text) | Event::InlineHtml(text) => Some(Event::Text(text)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => match console_href(&dest_url) {
            Some(href) => {
                links.push(true);
                Some(Event::Start(Tag::Link {
                    link_type,
                    dest_url: CowStr::from(href),
                    title,
                    id,
                }))
            }
            None => {
                links.push(false);
                None
            }
        },
        Event::End(pulldown_cmark::TagEnd::Link) => links
            .pop()
            .unwrap_or(false)
            .then_some(Event::End(pulldown_cmark::TagEnd::Link)),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Some(Event::Start(Tag::Image {
            link_type,
            dest_url: CowStr::from(console_href(&dest_url).unwrap_or_default()),
            title,
            id,
        })),
        other => Some(other),
    });
    let mut events: Vec<Event> = events.collect();
    give_headings_ids(&mut events);
    let mut out = String::new();
    html::push_html(&mut out, events.into_iter());
    out
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens
/// (`4. Refunds` → `4-refunds`), so a guide's `#…` links work on GitHub and in the console.
pub fn anchor(title: &str) -> String {
    title
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Gives each heading without an id its [`anchor`] (numbered `-1`, `-2` when repeated).
fn give_headings_ids(events: &mut [Event<'_>]) {
    let mut taken = std::collections::BTreeSet::new();
    for start in 0..events.len() {
        if !matches!(&events[start], Event::Start(Tag::Heading { id: None, .. })) {
            continue;
        }
        let mut title = String::new();
        for event in &events[start + 1..] {
            match event {
                Event::Text(text) | Event::Code(text) => title.push_str(text),
                Event::End(pulldown_cmark::TagEnd::Heading(_)) => break,
                _ => {}
            }
        }
        let slug = anchor(&title);
        let mut candidate = slug.clone();
        let mut n = 0;
        while taken.contains(&candidate) {
            n += 1;
            candidate = format!("{slug}-{n}");
        }
        taken.insert(candidate.clone());
        if let Event::Start(Tag::Heading { id, .. }) = &mut events[start] {
            *id = Some(CowStr::from(candidate));
        }
    }
}

#[derive(Template)]
#[template(path = "docs.html")]
struct DocsPage {
    chrome: Chrome,
    title: String,
    /// Rendered by [`to_html`]: raw HTML of the Markdown escaped.
    body: String,
    index: Vec<(String, &'static str)>,
}

async fn frame(console: &Console, headers: &HeaderMap, current: &str) -> (Lang, Chrome) {
    let lang = lang_of(headers);
    let chrome = match console.visit(headers, None, current).await {
        Ok(visit) => visit.chrome,
        Err(_) => chrome(lang, None, "", current),
    };
    (lang, chrome)
}

/// `/docs`: the list of guides.
pub async fn index(State(console): State<Console>, headers: HeaderMap) -> Response {
    let (lang, chrome) = frame(&console, &headers, "/docs").await;
    let t = Tr { lang };
    let index = GUIDES
        .iter()
        .map(|guide| (guide.title(lang).to_owned(), guide.slug))
        .collect();
    render(
        &DocsPage {
            chrome,
            title: t.get("docs-title"),
            body: to_html(&t.get("docs-intro")),
            index,
        },
        StatusCode::OK,
    )
}

/// `/docs/{guide}`: one guide in the reader's language; 404 for a guide that does not exist.
pub async fn show(
    State(console): State<Console>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let (lang, chrome) = frame(&console, &headers, "/docs").await;
    let Some(guide) = find(&slug) else {
        return error_page(chrome, StatusCode::NOT_FOUND);
    };
    render(
        &DocsPage {
            chrome,
            title: guide.title(lang).to_owned(),
            body: to_html(guide.markdown(lang)),
            index: Vec::new(),
        },
        StatusCode::OK,
    )
}

/// `/docs/screens/{file}`: a screenshot (PNG, or a text capture of the terminal).
pub async fn screen(headers: HeaderMap, Path(file): Path<String>) -> Response {
    let Some((name, bytes)) = SCREENS.iter().find(|(name, _)| *name == file) else {
        return error_page(
            chrome(lang_of(&headers), None, "", ""),
            StatusCode::NOT_FOUND,
        );
    };
    let content_type = if name.ends_with(".png") {
        "image/png"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        *bytes,
    )
        .into_response()
}
