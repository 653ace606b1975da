-- Cards by their ledger account: a reversal or void that gives back a card's spend of the day
-- finds the card from the transfer it undoes.
CREATE INDEX cards_account ON cards (account);
