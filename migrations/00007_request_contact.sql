-- +goose Up
-- The phone a request gives for texts about it. It is not the customer's
-- sign-in phone: only a sign-in code proves that.
ALTER TABLE requests ADD COLUMN contact_phone TEXT;
ALTER TABLE requests ADD COLUMN contact_locale TEXT;

-- +goose Down
ALTER TABLE requests DROP COLUMN contact_locale;
ALTER TABLE requests DROP COLUMN contact_phone;
