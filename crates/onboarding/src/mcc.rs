//! The plain-language business types of the application form and the merchant category code
//! (ISO 18245) each stands for, with the risk the checks give it and the monthly card volume
//! that is ordinary for a small business of the kind. The project had no MCC table before
//! (the risk engine takes MCCs as numbers from its rules file); this is the one list.

/// How much a category adds to an application's risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
    /// Not accepted at all (gambling, for example).
    Prohibited,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Category {
    pub mcc: &'static str,
    pub name_en: &'static str,
    pub name_zh: &'static str,
    pub risk: Risk,
    /// An ordinary month's card takings for a small business of this kind, in yuan; an
    /// application expecting more than this is looked at by a person.
    pub usual_monthly_yuan: i64,
}

const fn category(
    mcc: &'static str,
    name_en: &'static str,
    name_zh: &'static str,
    risk: Risk,
    usual_monthly_yuan: i64,
) -> Category {
    Category {
        mcc,
        name_en,
        name_zh,
        risk,
        usual_monthly_yuan,
    }
}

/// The picker's entries, in the order shown.
pub const CATEGORIES: [Category; 20] = [
    category(
        "5411",
        "Grocery store or supermarket",
        "超市、便利店",
        Risk::Low,
        500_000,
    ),
    category("5812", "Restaurant", "餐厅", Risk::Low, 300_000),
    category(
        "5814",
        "Fast food, café or tea shop",
        "快餐店、咖啡馆、茶饮店",
        Risk::Low,
        200_000,
    ),
    category("5942", "Bookshop", "书店", Risk::Low, 150_000),
    category("5912", "Pharmacy", "药店", Risk::Low, 300_000),
    category("5651", "Clothing shop", "服装店", Risk::Low, 200_000),
    category("5661", "Shoe shop", "鞋店", Risk::Low, 150_000),
    category("5977", "Cosmetics shop", "化妆品店", Risk::Low, 150_000),
    category("5992", "Florist", "花店", Risk::Low, 80_000),
    category(
        "7230",
        "Hair or beauty salon",
        "美发、美容店",
        Risk::Low,
        100_000,
    ),
    category(
        "5499",
        "Food shop or bakery",
        "食品店、面包店",
        Risk::Low,
        150_000,
    ),
    category(
        "5311",
        "Department store",
        "百货商店",
        Risk::Medium,
        2_000_000,
    ),
    category(
        "5732",
        "Electronics shop",
        "电子产品店",
        Risk::Medium,
        500_000,
    ),
    category(
        "7011",
        "Hotel or guest house",
        "酒店、民宿",
        Risk::Medium,
        1_000_000,
    ),
    category(
        "4121",
        "Taxi or ride service",
        "出租车、网约车",
        Risk::Medium,
        50_000,
    ),
    category("5541", "Petrol station", "加油站", Risk::Medium, 1_500_000),
    category(
        "5944",
        "Jewellery or watch shop",
        "珠宝、钟表店",
        Risk::High,
        1_000_000,
    ),
    category("5993", "Tobacco shop", "烟草店", Risk::High, 200_000),
    category("4829", "Money transfer", "汇款服务", Risk::High, 500_000),
    category(
        "7995",
        "Betting or lottery",
        "博彩、彩票",
        Risk::Prohibited,
        0,
    ),
];

/// The category of a four-digit MCC.
pub fn find(mcc: &str) -> Option<&'static Category> {
    CATEGORIES.iter().find(|category| category.mcc == mcc)
}

/// The entries a person may choose (prohibited ones are not offered).
pub fn offered() -> impl Iterator<Item = &'static Category> {
    CATEGORIES
        .iter()
        .filter(|category| category.risk != Risk::Prohibited)
}
