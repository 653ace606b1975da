//! Who may see what: every route checks the caller's role (may this role use the route at
//! all? otherwise 403) and tenant (is this record the tenant's? otherwise 404, so that a
//! caller cannot tell another tenant's records from records that do not exist).
//!
//! The rules, one place for the API and the console:
//!
//! | role | merchants and terminals | transactions | cards |
//! | --- | --- | --- | --- |
//! | platform operator | its acquirer's | its acquirer's merchants' | — |
//! | issuer operator | — | on the cards it issued | the cards it issued |
//! | wallet operator | — | on its wallets (none yet) | its wallets' (none yet) |
//! | merchant admin, manager, cashier | their merchant | their merchant's | — |
//! | cardholder | — | on their own cards | their own |
//! | channel partner | the merchants it referred | theirs | — |
//!
//! Freezes: a platform operator freezes its acquirer's terminals and merchants and any card; a
//! merchant admin or manager their own merchant and its terminals.

use store::Store;
use store::accounts::{CardPattern, Role, Tenant, TransactionFilter, User};
use store::directory::{Card, Directory, Merchant, Terminal};

/// What a route reads or changes, for the role check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Merchants,
    Terminals,
    Transactions,
    Cards,
    /// The message journal: every terminal message (operators only).
    Journal,
    /// Staff accounts of a merchant.
    Staff,
    /// Keys for integrators; cashiers and cardholders do not integrate.
    ApiKeys,
    /// Emergency freezes of terminals, merchants and cards: the acquirer's operators, and a
    /// merchant's admin and manager for their own terminals and merchant.
    Freezes,
    /// The audit log: operators their institution's and merchants' entries, a merchant's admin
    /// and manager their merchant's.
    Audit,
    /// The case queue of the risk rules: the acquirer's operators, and a merchant's admin and
    /// manager for their merchant's cases.
    Cases,
    /// End of day's reports (`easypos settle`): the acquirer's operators all of them, a
    /// merchant's admin and manager their merchant's statements.
    Settlement,
    /// Incidents with the acquirer's operations: the operators, a merchant's admin and manager
    /// (their merchant's), and channel partners (the merchants they referred).
    Incidents,
    /// The merchant's operating procedures and the training record: every member of a
    /// merchant's staff reads and acknowledges them; the admin writes them.
    Procedures,
}

/// Whether `role` may use routes on `resource` at all.
pub fn allows(role: Role, resource: Resource) -> bool {
    use Resource::*;
    use Role::*;
    match resource {
        Merchants | Terminals => matches!(
            role,
            PlatformOperator | MerchantAdmin | MerchantManager | Cashier | ChannelPartner
        ),
        Transactions => true,
        Cards => matches!(role, IssuerOperator | WalletOperator | Cardholder),
        Journal => role == PlatformOperator,
        Staff => matches!(role, MerchantAdmin | MerchantManager),
        ApiKeys => matches!(
            role,
            PlatformOperator | IssuerOperator | WalletOperator | MerchantAdmin | ChannelPartner
        ),
        Freezes | Audit | Cases | Settlement => {
            matches!(role, PlatformOperator | MerchantAdmin | MerchantManager)
        }
        Incidents => matches!(
            role,
            PlatformOperator | MerchantAdmin | MerchantManager | ChannelPartner
        ),
        Procedures => matches!(role, MerchantAdmin | MerchantManager | Cashier),
    }
}

/// A signed-in caller: the user, and how they proved it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user: User,
}

/// The records a caller's tenant covers, read once per request from the directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub merchants: Vec<Merchant>,
    pub terminals: Vec<Terminal>,
    pub cards: Vec<Card>,
}

impl Scope {
    /// The tenant's records. The directory is read whole: it is small in this release (the
    /// demo world and a few sites); a paged directory read comes with onboarding.
    pub async fn of(store: &Store, user: &User) -> Result<Scope, store::StoreError> {
        let directory = store.load_directory().await?;
        let merchant_ids: Vec<String> = match (&user.tenant, user.role) {
            (Tenant::Institution(institution), Role::PlatformOperator) => directory
                .merchants
                .iter()
                .filter(|merchant| merchant.acquirer == *institution)
                .map(|merchant| merchant.id.clone())
                .collect(),
            (Tenant::Merchant(id), _) => vec![id.clone()],
            (Tenant::Partner(partner), _) => store.referred_merchants(partner).await?,
            _ => Vec::new(),
        };
        let cards = match &user.tenant {
            Tenant::Cardholder(holder) => directory
                .cards
                .iter()
                .filter(|card| &card.cardholder_id == holder)
                .cloned()
                .collect(),
            Tenant::Institution(institution) if user.role != Role::PlatformOperator => directory
                .cards
                .iter()
                .filter(|card| card.issuer == *institution)
                .cloned()
                .collect(),
            _ => Vec::new(),
        };
        Ok(Scope::select(directory, &merchant_ids, cards))
    }

    fn select(directory: Directory, merchant_ids: &[String], cards: Vec<Card>) -> Scope {
        Scope {
            merchants: directory
                .merchants
                .into_iter()
                .filter(|merchant| merchant_ids.contains(&merchant.id))
                .collect(),
            terminals: directory
                .terminals
                .into_iter()
                .filter(|terminal| merchant_ids.contains(&terminal.merchant_id))
                .collect(),
            cards,
        }
    }

    pub fn merchant(&self, id: &str) -> Option<&Merchant> {
        self.merchants.iter().find(|merchant| merchant.id == id)
    }

    pub fn terminal(&self, id: &str) -> Option<&Terminal> {
        self.terminals.iter().find(|terminal| terminal.id == id)
    }

    pub fn card(&self, id: &str) -> Option<&Card> {
        self.cards.iter().find(|card| card.id == id)
    }

    /// The transaction filter that keeps a caller of `role` inside this scope: merchant roles
    /// and partners by merchant, issuers and cardholders by card. Every filter a caller adds
    /// narrows it further; none widens it.
    pub fn transaction_filter(&self, role: Role) -> TransactionFilter {
        let by_cards = matches!(
            role,
            Role::IssuerOperator | Role::WalletOperator | Role::Cardholder
        );
        let cards = self
            .cards
            .iter()
            .filter_map(|card| CardPattern::parse(&card.masked_pan()))
            .collect();
        TransactionFilter {
            merchants: (!by_cards).then(|| self.merchants.iter().map(|m| m.id.clone()).collect()),
            cards: by_cards.then_some(cards),
            ..TransactionFilter::default()
        }
    }
}
