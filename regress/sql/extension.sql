-- Installing ai_loader: schema ai, its catalog, and the refusal to share schema ai
-- with pgai.
\pset null '(null)'

-- A database where pgai's catalog already lives in schema ai.
CREATE SCHEMA ai;
CREATE TABLE ai.vectorizer (id int);
CREATE EXTENSION ai_loader;
DROP SCHEMA ai CASCADE;

CREATE EXTENSION ai_loader;
SELECT e.extname, n.nspname AS schema, e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'ai_loader';

-- The catalog and the SQL surface.
SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'ai' AND c.relkind IN ('r', 'v', 'S')
 ORDER BY c.relname;
SELECT p.oid::regprocedure AS function
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'ai' AND p.proname !~ '^_'
 ORDER BY p.oid::regprocedure::text;

-- Settings under ai_loader. are reserved: an unknown one is refused, not a placeholder.
SET ai_loader.no_such_setting = 'x';

-- pg_dump keeps the catalog's rows.
SELECT c::regclass AS dumped
  FROM pg_extension, unnest(extconfig) c WHERE extname = 'ai_loader' ORDER BY c::regclass::text;

-- DROP EXTENSION removes every object; Postgres keeps the schema a control file names,
-- empty.
DROP EXTENSION ai_loader;
SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'ai'::regnamespace) AS relations_left,
       (SELECT count(*) FROM pg_proc WHERE pronamespace = 'ai'::regnamespace) AS functions_left;
DROP SCHEMA ai;
