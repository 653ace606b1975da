#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The guides (`docs/guides`, issue 16): every relative link points to a file that exists (and
//! an anchor to one of its headings),
//! every screenshot a guide names exists, the terminal screens in the guides are the captured
//! ones, both languages have the same guides, and the console serves them at `/docs` in the
//! reader's language with raw HTML escaped.
//!
//! With `EASYPOS_UPDATE_SCREENSHOTS=1`, the screen blocks of the guides (```` ```text screen=NAME ````)
//! are rewritten from `docs/guides/screens/NAME.txt` (captured by `crates/easypos/tests/terminal_tui.rs`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tower::ServiceExt;

fn guides_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/guides")
}

/// Every Markdown file under `docs/guides`, with the README.
fn markdown_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut dirs = vec![guides_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 13, "{files:?}");
    files
}

/// The targets of the Markdown links and images of `text` (`[..](target)` and `![..](target)`),
/// outside code.
fn link_targets(text: &str) -> Vec<String> {
    use pulldown_cmark::{Event, Parser, Tag};
    Parser::new(text)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .collect()
}

/// The anchors GitHub gives the headings of a Markdown text ([`console::guides::anchor`]), a
/// repeated one numbered (`-1`, `-2`).
fn anchors(text: &str) -> BTreeSet<String> {
    use pulldown_cmark::{Event, Parser, Tag, TagEnd};
    let mut anchors = BTreeSet::new();
    let mut heading: Option<String> = None;
    for event in Parser::new(text) {
        match event {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::Text(text) | Event::Code(text) => {
                if let Some(heading) = heading.as_mut() {
                    heading.push_str(&text);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                let title = heading.take().unwrap_or_default();
                let slug = console::guides::anchor(&title);
                let mut candidate = slug.clone();
                let mut n = 0;
                while anchors.contains(&candidate) {
                    n += 1;
                    candidate = format!("{slug}-{n}");
                }
                anchors.insert(candidate);
            }
            _ => {}
        }
    }
    anchors
}

#[test]
fn every_relative_link_in_the_guides_points_to_an_existing_file() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let (path, fragment) = target.split_once('#').unwrap_or((&target, ""));
            checked += 1;
            let linked = file.parent().unwrap().join(path);
            if !linked.exists() {
                broken.push(format!("{}: {target}", file.display()));
            } else if !fragment.is_empty() {
                // An anchor must name a heading of the linked Markdown.
                let linked_text = std::fs::read_to_string(&linked).unwrap();
                if !anchors(&linked_text).contains(fragment) {
                    broken.push(format!("{}: {target} (no such heading)", file.display()));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} links found");
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

/// The screen blocks of a guide: (name, the block's lines, start and end byte of the content).
fn screen_blocks(text: &str) -> Vec<(String, usize, usize)> {
    let mut blocks = Vec::new();
    let mut offset = 0;
    let mut open: Option<(String, usize, String)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim();
        match &open {
            None => {
                if let Some(name) = trimmed.strip_prefix("```text screen=") {
                    let indent = line[..line.len() - line.trim_start().len()].to_owned();
                    open = Some((name.to_owned(), offset + line.len(), indent));
                }
            }
            Some((name, start, _)) => {
                if trimmed == "```" {
                    blocks.push((name.clone(), *start, offset));
                    open = None;
                }
            }
        }
        offset += line.len();
    }
    assert!(open.is_none(), "an unclosed screen block");
    blocks
}

/// A screen capture as a guide shows it: each line indented like the block.
fn indented(capture: &str, indent: &str) -> String {
    capture
        .lines()
        .map(|line| {
            if line.is_empty() {
                "\n".to_owned()
            } else {
                format!("{indent}{line}\n")
            }
        })
        .collect()
}

#[test]
fn the_screens_in_the_guides_exist_and_match_the_captures() {
    let screens = guides_dir().join("screens");
    let update = std::env::var("EASYPOS_UPDATE_SCREENSHOTS").as_deref() == Ok("1");
    let mut named = BTreeSet::new();
    let mut stale = Vec::new();
    for file in markdown_files() {
        let mut text = std::fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if let Some(name) = target.strip_prefix("../screens/") {
                assert!(
                    screens.join(name).is_file(),
                    "{} shows {name}, which does not exist",
                    file.display()
                );
                named.insert(name.to_owned());
            }
        }
        // Back to front, so the offsets stay right while rewriting.
        for (name, start, end) in screen_blocks(&text).into_iter().rev() {
            let path = screens.join(format!("{name}.txt"));
            let capture = std::fs::read_to_string(&path).unwrap_or_else(|_| {
                panic!("{} shows {name}, which does not exist", file.display())
            });
            named.insert(format!("{name}.txt"));
            let fence_line = text[..start].trim_end_matches('\n');
            let fence_line = &fence_line[fence_line.rfind('\n').map_or(0, |at| at + 1)..];
            let indent = &fence_line[..fence_line.len() - fence_line.trim_start().len()];
            let want = indented(&capture, indent);
            if text[start..end] != want {
                stale.push(format!("{}: {name}", file.display()));
                text.replace_range(start..end, &want);
            }
        }
        if update {
            std::fs::write(&file, &text).unwrap();
        }
    }
    for entry in std::fs::read_dir(&screens).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(named.contains(&name), "screens/{name} is in no guide");
    }
    assert!(
        update || stale.is_empty(),
        "guides out of step with their captures (EASYPOS_UPDATE_SCREENSHOTS=1 rewrites them):\n{}",
        stale.join("\n")
    );
}

#[test]
fn both_languages_have_every_guide_and_the_console_embeds_each() {
    for lang in ["en", "zh-CN"] {
        let files: BTreeSet<String> = std::fs::read_dir(guides_dir().join(lang))
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        let embedded: BTreeSet<String> = console::guides::GUIDES
            .iter()
            .map(|guide| format!("{}.md", guide.slug))
            .collect();
        assert_eq!(files, embedded, "{lang}");
    }
    let png = console::guides::SCREENS
        .iter()
        .filter(|(name, _)| name.ends_with(".png"))
        .count();
    assert!(png >= 1, "the console serves the screenshots");
    for (name, bytes) in console::guides::SCREENS {
        assert!(
            bytes.len() < 400_000,
            "{name} is {} bytes: keep screenshots small",
            bytes.len()
        );
    }
}

#[test]
fn raw_html_in_a_guide_is_escaped_and_foreign_links_become_text() {
    let html = console::guides::to_html(
        "# T\n\n<script>alert(1)</script>\n\nInline <img src=x onerror=alert(1)> here.\n\n\
         [cashier](cashier.md#signing-on), [api](../../api.md), [js](javascript:alert(1)), \
         ![shot](../screens/tui-menu.txt)\n",
    );
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img src=\"x"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("href=\"/docs/cashier#signing-on\""), "{html}");
    assert!(html.contains("<h1 id=\"t\">T</h1>"), "{html}");
    assert!(!html.contains("href=\"../../api.md\""), "{html}");
    assert!(html.contains("api"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(
        html.contains("src=\"/docs/screens/tui-menu.txt\""),
        "{html}"
    );
}

async fn router() -> (axum::Router, store::testing::TestBackend) {
    let backend = store::testing::sqlite();
    let store = Arc::new(store::Store::open(&backend.backend).await.unwrap());
    let hsm: Arc<dyn hsm::Hsm> = Arc::new(hsm::SoftHsm::new(&[0x42; 32]).unwrap());
    let mfa = console::mfa::Mfa::ensure(&store, hsm).await.unwrap();
    let router = console::router(console::Console::new(api::ApiState::new(store), mfa));
    (router, backend)
}

async fn get(router: &axum::Router, path: &str, language: &str) -> (StatusCode, String, String) {
    let response = router
        .clone()
        .oneshot(
            Request::get(path)
                .header("accept-language", language)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// The `/docs…` addresses of a page's links and images.
fn docs_links(html: &str) -> BTreeSet<String> {
    let mut links = BTreeSet::new();
    for attribute in ["href=\"", "src=\""] {
        for part in html.split(attribute).skip(1) {
            let target = &part[..part.find('"').unwrap()];
            if target.starts_with("/docs") {
                links.insert(target.split('#').next().unwrap().to_owned());
            }
        }
    }
    links
}

/// The `/docs/…#fragment` links of a page, as (path, fragment).
fn anchor_links(html: &str) -> BTreeSet<(String, String)> {
    html.split("href=\"")
        .skip(1)
        .map(|part| &part[..part.find('"').unwrap()])
        .filter(|target| target.starts_with("/docs/"))
        .filter_map(|target| target.split_once('#'))
        .map(|(path, fragment)| (path.to_owned(), fragment.to_owned()))
        .collect()
}

#[tokio::test]
async fn the_console_serves_every_guide_in_both_languages_and_their_links_resolve() {
    let (router, _backend) = router().await;
    let mut links = BTreeSet::new();
    let mut anchored = BTreeSet::new();
    let mut pages = std::collections::BTreeMap::new();
    for (language, lang_attr, heading) in [
        ("en-US,en;q=0.9", "lang=\"en\"", "Cashier guide"),
        ("zh-CN,zh;q=0.9", "lang=\"zh-CN\"", "收银员指南"),
    ] {
        let (status, _, index) = get(&router, "/docs", language).await;
        assert_eq!(status, StatusCode::OK, "{index}");
        assert!(
            index.contains(lang_attr) && index.contains(heading),
            "{index}"
        );
        for guide in console::guides::GUIDES {
            assert!(
                index.contains(&format!("href=\"/docs/{}\"", guide.slug)),
                "{index}"
            );
            let (status, _, page) = get(&router, &format!("/docs/{}", guide.slug), language).await;
            assert_eq!(status, StatusCode::OK, "{}", guide.slug);
            assert!(page.contains(lang_attr), "{page}");
            let lang = console::i18n::Lang::parse(lang_attr.split('"').nth(1).unwrap()).unwrap();
            let title = guide.title(lang);
            assert!(page.contains(&format!(">{title}</h1>")), "{title}: {page}");
            // The menu link to the guides, on every page.
            assert!(page.contains("href=\"/docs\""), "{page}");
            links.extend(docs_links(&page));
            anchored.extend(anchor_links(&page));
            pages.insert(format!("/docs/{}#{}", guide.slug, lang.code()), page);
        }
    }
    assert!(
        links.iter().any(|link| link.starts_with("/docs/screens/")),
        "{links:?}"
    );
    assert!(links.len() > 10, "{links:?}");
    for link in &links {
        let (status, _, _) = get(&router, link, "en").await;
        assert_eq!(status, StatusCode::OK, "{link}");
    }
    let (status, content_type, _) = get(&router, "/docs/screens/tui-menu.txt", "en").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
}

#[tokio::test]
async fn an_unknown_guide_or_screen_is_not_found() {
    let (router, _backend) = router().await;
    for path in [
        "/docs/nope",
        "/docs/..%2Fapi",
        "/docs/screens/nope.png",
        "/docs/screens/..%2F..%2FREADME.md",
    ] {
        let (status, _, body) = get(&router, path, "zh-CN").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
}
