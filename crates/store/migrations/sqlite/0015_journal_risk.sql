-- The acquirer's risk rules that fired for a message, and why (issue 10): `name(action,score):
-- reason; …`, NULL when none fired. Card data never appears in it: rules name cards by the
-- directory's card id, and reasons carry counts and amounts only.
ALTER TABLE journal ADD COLUMN risk TEXT;
