-- Drops the objects of the current database created after the baseline: those whose object id
-- is above the baseline's highest (max_oid). Containers go first (event triggers, schemas,
-- extensions, relations, types, routines), with CASCADE, so what depends on them goes with them;
-- then what was added to baseline relations. Each pass queries the catalogs afresh, so what an
-- earlier pass removed is not tried again. A statement that fails is skipped: the schema digest
-- compared afterwards decides whether the database must be re-created from its template.
DO $seaworthy$
DECLARE
  max_oid constant oid := {max_oid};
  stmt text;
  cat regclass;
  obj oid;
BEGIN
  FOR stmt IN SELECT format('DROP EVENT TRIGGER %I', evtname) FROM pg_event_trigger WHERE oid > max_oid
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace
               WHERE oid > max_oid AND nspname !~ '^pg_(toast_)?temp_'
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN SELECT format('DROP EXTENSION %I CASCADE', extname) FROM pg_extension WHERE oid > max_oid
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN
    SELECT format('DROP %s IF EXISTS %I.%I CASCADE',
                  CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                    WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
                  n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid > max_oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relpersistence <> 't'
       AND NOT c.relispartition
     ORDER BY c.oid DESC
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN
    SELECT format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                  n.nspname, t.typname)
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.oid > max_oid AND n.nspname !~ '^pg_(toast_)?temp_' AND t.typtype IN ('b', 'c', 'd', 'e', 'r')
       AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
       AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN
    SELECT format('DROP ROUTINE IF EXISTS %s CASCADE', p.oid::regprocedure)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.oid > max_oid AND n.nspname !~ '^pg_(toast_)?temp_'
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  -- What was added to baseline relations and types.
  FOR stmt IN
    SELECT format('ALTER TABLE %s DROP CONSTRAINT IF EXISTS %I CASCADE', k.conrelid::regclass, k.conname)
      FROM pg_constraint k WHERE k.oid > max_oid AND k.conrelid <> 0
    UNION ALL
    SELECT format('ALTER DOMAIN %s DROP CONSTRAINT IF EXISTS %I CASCADE', k.contypid::regtype, k.conname)
      FROM pg_constraint k WHERE k.oid > max_oid AND k.contypid <> 0
    UNION ALL
    SELECT format('DROP TRIGGER IF EXISTS %I ON %s CASCADE', g.tgname, g.tgrelid::regclass)
      FROM pg_trigger g WHERE g.oid > max_oid AND NOT g.tgisinternal
    UNION ALL
    SELECT format('DROP POLICY IF EXISTS %I ON %s', o.polname, o.polrelid::regclass)
      FROM pg_policy o WHERE o.oid > max_oid
    UNION ALL
    SELECT format('DROP RULE IF EXISTS %I ON %s CASCADE', w.rulename, w.ev_class::regclass)
      FROM pg_rewrite w WHERE w.oid > max_oid AND w.rulename <> '_RETURN'
    UNION ALL
    SELECT format('DROP STATISTICS IF EXISTS %I.%I', n.nspname, s.stxname)
      FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace WHERE s.oid > max_oid
    UNION ALL
    SELECT format('SELECT lo_unlink(%s)', l.oid) FROM pg_largeobject_metadata l WHERE l.oid > max_oid
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  FOR stmt IN
    SELECT format('DROP INDEX IF EXISTS %I.%I CASCADE', n.nspname, c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid > max_oid AND c.relkind IN ('i', 'I') AND c.relpersistence <> 't'
    UNION ALL
    SELECT format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', d.adrelid::regclass, a.attname)
      FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
     WHERE d.oid > max_oid
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
  -- Rarer kinds, named the way their DROP command wants them.
  FOREACH cat IN ARRAY ARRAY['pg_operator', 'pg_opclass', 'pg_opfamily', 'pg_cast', 'pg_collation',
      'pg_conversion', 'pg_ts_config', 'pg_ts_dict', 'pg_ts_parser', 'pg_ts_template',
      'pg_foreign_server', 'pg_publication', 'pg_language', 'pg_am']::regclass[]
  LOOP
    FOR obj IN EXECUTE format('SELECT oid FROM %s WHERE oid > $1', cat) USING max_oid
    LOOP
      SELECT format('DROP %s %s CASCADE', i.type, i.identity) INTO stmt
        FROM pg_identify_object(cat, obj, 0) i;
      BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
    END LOOP;
  END LOOP;
END
$seaworthy$
