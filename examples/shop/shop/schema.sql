-- The shop's schema and its reference data: the template every test's
-- database is copied from (PostgresqlFixture(template=...)).
CREATE TABLE products (
    sku text PRIMARY KEY,
    name text NOT NULL,
    price integer NOT NULL CHECK (price > 0),  -- cents
    stock integer NOT NULL CHECK (stock >= 0)
);

CREATE TABLE orders (
    id serial PRIMARY KEY,
    customer text NOT NULL,
    total integer NOT NULL
);

CREATE TABLE order_lines (
    order_id integer NOT NULL REFERENCES orders,
    sku text NOT NULL REFERENCES products,
    quantity integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, sku)
);

INSERT INTO products (sku, name, price, stock) VALUES
    ('apple', 'Apple', 30, 100),
    ('pear', 'Pear', 45, 60),
    ('plum', 'Plum', 20, 40),
    ('fig', 'Fig', 80, 12),
    ('quince', 'Quince', 120, 5);
