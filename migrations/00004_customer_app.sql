-- +goose Up
ALTER TABLE requests ADD COLUMN photos TEXT NOT NULL DEFAULT '[]';
ALTER TABLE requests ADD COLUMN rating_stars INTEGER CHECK (rating_stars BETWEEN 1 AND 5);
ALTER TABLE requests ADD COLUMN rating_comment TEXT;
ALTER TABLE requests ADD COLUMN rated_at TIMESTAMP;

-- +goose Down
ALTER TABLE requests DROP COLUMN rated_at;
ALTER TABLE requests DROP COLUMN rating_comment;
ALTER TABLE requests DROP COLUMN rating_stars;
ALTER TABLE requests DROP COLUMN photos;
