-- +goose Up
-- Refresh-token families (issue 18): every token rotated from one sign-in
-- shares its family; a rotated token used again revokes the whole family,
-- and signing out revokes it too. Tokens issued before have a family of
-- their own.
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT;
UPDATE refresh_tokens SET family_id = id WHERE family_id IS NULL;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);

-- +goose Down
DROP INDEX refresh_tokens_family;
ALTER TABLE refresh_tokens DROP COLUMN family_id;
