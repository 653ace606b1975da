//! The automatic checks of a submitted application: what the form cannot show alone
//! (duplicates, the category's risk, a volume out of proportion, who submitted it), scored
//! with a reason for each point, so that an operator sees why an application waits for them.
//! Formats and check characters were already checked field by field ([`crate::validate`]).

use crate::mcc::{Category, Risk};

/// At or above this score a person reviews the application; below it, it is approved at once.
pub const REVIEW_FROM_SCORE: u32 = 20;

/// One reason, with the points it adds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reason {
    pub code: String,
    pub points: u32,
    pub detail: String,
}

/// What the checks know beyond the form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Other applications (not rejected) with the same credit code, by tracking number.
    pub same_credit_code: Vec<String>,
    /// Other applications (not rejected) with the same legal representative's ID number.
    pub same_id_number: Vec<String>,
    pub partner_submitted: bool,
}

/// The score and its reasons, highest first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Assessment {
    pub score: u32,
    pub reasons: Vec<Reason>,
}

impl Assessment {
    pub fn needs_review(&self) -> bool {
        self.score >= REVIEW_FROM_SCORE
    }
}

/// Scores an application of `category` expecting `monthly_yuan` with `terminals` terminals.
pub fn assess(
    category: &Category,
    monthly_yuan: i64,
    terminals: u32,
    context: &Context,
) -> Assessment {
    let mut reasons = Vec::new();
    let mut add = |code: &str, points: u32, detail: String| {
        reasons.push(Reason {
            code: code.to_owned(),
            points,
            detail,
        });
    };
    if !context.same_credit_code.is_empty() {
        add(
            "duplicate-credit-code",
            60,
            format!(
                "the same unified social credit code is on {}",
                context.same_credit_code.join(", ")
            ),
        );
    }
    if !context.same_id_number.is_empty() {
        add(
            "duplicate-id-number",
            40,
            format!(
                "the same legal representative's ID number is on {}",
                context.same_id_number.join(", ")
            ),
        );
    }
    match category.risk {
        Risk::Low => {}
        Risk::Medium => add(
            "mcc-risk",
            20,
            format!(
                "business type {} ({}) is of medium risk",
                category.mcc, category.name_en
            ),
        ),
        Risk::High | Risk::Prohibited => add(
            "mcc-risk",
            50,
            format!(
                "business type {} ({}) is of high risk",
                category.mcc, category.name_en
            ),
        ),
    }
    let usual = category.usual_monthly_yuan;
    if monthly_yuan > usual.saturating_mul(3) {
        add(
            "volume-far-above-category",
            50,
            format!(
                "{monthly_yuan} yuan a month is over three times the usual {usual} yuan of the category"
            ),
        );
    } else if monthly_yuan > usual {
        add(
            "volume-above-category",
            25,
            format!("{monthly_yuan} yuan a month is above the usual {usual} yuan of the category"),
        );
    }
    if terminals > 5 {
        add(
            "many-terminals",
            10,
            format!("{terminals} terminals for a new merchant"),
        );
    }
    if context.partner_submitted {
        add(
            "partner-submitted",
            10,
            "submitted by a channel partner on the merchant's behalf".to_owned(),
        );
    }
    reasons.sort_by_key(|reason| std::cmp::Reverse(reason.points));
    Assessment {
        score: reasons.iter().map(|reason| reason.points).sum(),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn category(mcc: &str) -> &'static Category {
        crate::mcc::find(mcc).expect("a known category")
    }

    #[test]
    fn a_plain_cafe_is_approved_at_once() {
        let assessment = assess(category("5814"), 80_000, 1, &Context::default());
        assert_eq!(assessment.score, 0);
        assert!(!assessment.needs_review());
        let partner = Context {
            partner_submitted: true,
            ..Context::default()
        };
        let assessment = assess(category("5814"), 80_000, 1, &partner);
        assert_eq!((assessment.score, assessment.needs_review()), (10, false));
    }

    #[test]
    fn each_check_adds_its_reason() {
        let context = Context {
            same_credit_code: vec!["AP1".into()],
            same_id_number: vec!["AP2".into()],
            partner_submitted: true,
        };
        let assessment = assess(category("5944"), 5_000_000, 6, &context);
        let codes: Vec<&str> = assessment.reasons.iter().map(|r| r.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "duplicate-credit-code",
                "mcc-risk",
                "volume-far-above-category",
                "duplicate-id-number",
                "many-terminals",
                "partner-submitted"
            ]
        );
        assert_eq!(assessment.score, 60 + 50 + 50 + 40 + 10 + 10);
        let above = assess(category("5814"), 250_000, 1, &Context::default());
        assert_eq!(above.reasons[0].code, "volume-above-category");
        assert!(above.needs_review());
        let medium = assess(category("5311"), 10_000, 1, &Context::default());
        assert_eq!((medium.score, medium.needs_review()), (20, true));
    }
}
