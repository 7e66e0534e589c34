CREATE TABLE stories (id serial PRIMARY KEY, name varchar NOT NULL);
