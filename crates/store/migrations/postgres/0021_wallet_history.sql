-- The wallet page's history (issue 8): a wallet's orders, newest change first.
CREATE INDEX wallet_orders_by_wallet ON wallet_orders (wallet_id, updated_at);
-- A merchant's QR payments in the console, newest first.
CREATE INDEX wallet_orders_by_merchant ON wallet_orders (merchant_id, created_at);
