-- Receipt signing keys (issue 9): the acquirer signs every receipt's statement with Ed25519.
-- The private key is a TR-31 block under the HSM's master key (usage S0, never exportable);
-- the public key is kept beside it so that a receipt verifies without the HSM. One row has no
-- `retired_at`: the key that signs now. Rotation retires it (it still verifies the receipts
-- it signed) and adds a new one, in one transaction.
CREATE TABLE receipt_keys (
    key_id     TEXT   PRIMARY KEY,
    token      TEXT   NOT NULL,
    public_key TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);
