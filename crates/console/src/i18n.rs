//! English and Simplified Chinese with Fluent. The messages are in `i18n/*.ftl`, embedded in
//! the binary; a test fails when a message id exists in one language only, or when a template
//! asks for an id that does not exist.

use fluent_bundle::FluentResource;
use fluent_bundle::concurrent::FluentBundle;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    ZhCn,
}

pub const SOURCES: [(Lang, &str); 2] = [
    (Lang::En, include_str!("../i18n/en.ftl")),
    (Lang::ZhCn, include_str!("../i18n/zh-CN.ftl")),
];

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    pub fn parse(code: &str) -> Option<Lang> {
        [Lang::En, Lang::ZhCn]
            .into_iter()
            .find(|lang| lang.code().eq_ignore_ascii_case(code))
    }

    /// The other language, for the switch in the page header.
    pub fn other(self) -> Lang {
        match self {
            Lang::En => Lang::ZhCn,
            Lang::ZhCn => Lang::En,
        }
    }

    /// The first of the browser's languages (`Accept-Language`, in the order given; the
    /// browser puts its preference first) that we speak; English otherwise.
    pub fn from_accept_language(header: &str) -> Lang {
        header
            .split(',')
            .filter_map(|part| part.split(';').next())
            .map(|tag| tag.trim().to_ascii_lowercase())
            .find_map(|tag| {
                if tag.starts_with("zh") {
                    Some(Lang::ZhCn)
                } else if tag.starts_with("en") {
                    Some(Lang::En)
                } else {
                    None
                }
            })
            .unwrap_or(Lang::En)
    }
}

struct Bundles {
    en: FluentBundle<FluentResource>,
    zh: FluentBundle<FluentResource>,
}

fn bundle(lang: Lang, source: &str) -> FluentBundle<FluentResource> {
    let id = lang
        .code()
        .parse()
        .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
    let mut bundle = FluentBundle::new_concurrent(vec![id]);
    // No Unicode isolation marks around arguments: they would show in HTML attributes.
    bundle.set_use_isolating(false);
    // A resource with errors keeps the messages that parsed; the tests catch the errors.
    let resource = match FluentResource::try_new(source.to_owned()) {
        Ok(resource) | Err((resource, _)) => resource,
    };
    if let Err(errors) = bundle.add_resource(resource) {
        tracing::error!(?errors, lang = lang.code(), "translation messages collide");
    }
    bundle
}

fn bundles() -> &'static Bundles {
    static BUNDLES: OnceLock<Bundles> = OnceLock::new();
    BUNDLES.get_or_init(|| Bundles {
        en: bundle(Lang::En, SOURCES[0].1),
        zh: bundle(Lang::ZhCn, SOURCES[1].1),
    })
}

/// The translator a page renders with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tr {
    pub lang: Lang,
}

impl Tr {
    /// The message `id` in this language (the id itself when missing, so a page never fails).
    pub fn get(&self, id: &str) -> String {
        let bundles = bundles();
        let bundle = match self.lang {
            Lang::En => &bundles.en,
            Lang::ZhCn => &bundles.zh,
        };
        let Some(pattern) = bundle.get_message(id).and_then(|message| message.value()) else {
            return id.to_owned();
        };
        let mut errors = Vec::new();
        bundle
            .format_pattern(pattern, None, &mut errors)
            .into_owned()
    }
}

/// The message ids of a Fluent source, for the tests.
pub fn message_ids(source: &str) -> Result<Vec<String>, String> {
    let resource =
        FluentResource::try_new(source.to_owned()).map_err(|(_, errors)| format!("{errors:?}"))?;
    Ok(resource
        .entries()
        .filter_map(|entry| match entry {
            fluent_syntax::ast::Entry::Message(message) => Some(message.id.name.to_owned()),
            _ => None,
        })
        .collect())
}
