-- A digest of everything in the current database that a test could create, alter or drop and
-- that is not row data: the user-level rows of the per-database catalogs (oid >= 16384, the first
-- object id initdb leaves to users), minus temporary objects and the statistics columns that
-- VACUUM and ANALYZE change on their own. Privileges are compared by meaning: a grant revoked
-- again leaves an explicit default ACL where there was none. Equal digests mean the schema is
-- the baseline's.
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(',', n.oid, n.nspname, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))), ';' ORDER BY n.oid)
     FROM pg_namespace n WHERE n.nspname !~ '^pg_(toast_)?temp_'),
  (SELECT string_agg(concat_ws(',', c.oid, c.relname, c.relnamespace, c.reltype, c.relowner, c.relam,
            c.relkind, c.relpersistence, c.relnatts, c.relchecks, c.relrowsecurity,
            c.relforcerowsecurity, c.relreplident, c.relispartition,
            coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::"char", c.relowner)), c.reloptions,
            md5(c.relpartbound::text)), ';' ORDER BY c.oid)
     FROM pg_class c WHERE c.oid >= 16384 AND c.relpersistence <> 't'),
  (SELECT string_agg(concat_ws(',', a.attrelid, a.attnum, a.attname, a.atttypid, a.atttypmod,
            a.attnotnull, a.atthasdef, a.attisdropped, a.attidentity, a.attgenerated,
            a.attcollation, a.attstattarget, nullif(a.attacl, '{}'::aclitem[]), a.attoptions), ';' ORDER BY a.attrelid, a.attnum)
     FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    WHERE a.attrelid >= 16384 AND a.attnum > 0 AND c.relpersistence <> 't'),
  (SELECT string_agg(concat_ws(',', d.oid, d.adrelid, d.adnum, md5(d.adbin::text)), ';' ORDER BY d.oid)
     FROM pg_attrdef d WHERE d.oid >= 16384),
  (SELECT string_agg(concat_ws(',', k.oid, k.conname, k.connamespace, k.contype, k.condeferrable,
            k.condeferred, k.convalidated, k.conrelid, k.contypid, k.conindid, k.confrelid,
            k.confupdtype, k.confdeltype, k.conkey, k.confkey, md5(k.conbin::text)), ';' ORDER BY k.oid)
     FROM pg_constraint k WHERE k.oid >= 16384),
  (SELECT string_agg(concat_ws(',', i.indexrelid, i.indrelid, i.indisunique, i.indisprimary,
            i.indisexclusion, i.indimmediate, i.indisclustered, i.indisvalid, i.indisreplident,
            i.indkey, i.indclass, md5(i.indexprs::text), md5(i.indpred::text)), ';' ORDER BY i.indexrelid)
     FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    WHERE i.indexrelid >= 16384 AND c.relpersistence <> 't'),
  (SELECT string_agg(concat_ws(',', t.oid, t.typname, t.typnamespace, t.typowner, t.typtype,
            t.typrelid, t.typbasetype, t.typtypmod, t.typnotnull, t.typcollation,
            coalesce(t.typacl, acldefault('T', t.typowner)),
            md5(t.typdefaultbin::text)), ';' ORDER BY t.oid)
     FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE t.oid >= 16384 AND n.nspname !~ '^pg_(toast_)?temp_'),
  (SELECT string_agg(concat_ws(',', e.oid, e.enumtypid, e.enumsortorder, e.enumlabel), ';' ORDER BY e.oid)
     FROM pg_enum e WHERE e.oid >= 16384),
  (SELECT string_agg(concat_ws(',', p.oid, p.proname, p.pronamespace, p.proowner, p.prokind,
            p.prosecdef, p.proleakproof, p.proisstrict, p.provolatile, p.proparallel,
            p.proargtypes, p.prorettype, p.proallargtypes, p.proargmodes, p.proargnames,
            md5(p.prosrc), p.probin, p.proconfig, coalesce(p.proacl, acldefault('f', p.proowner))), ';' ORDER BY p.oid)
     FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.oid >= 16384 AND n.nspname !~ '^pg_(toast_)?temp_'),
  (SELECT string_agg(concat_ws(',', g.oid, g.tgrelid, g.tgname, g.tgfoid, g.tgtype, g.tgenabled), ';' ORDER BY g.oid)
     FROM pg_trigger g WHERE g.oid >= 16384),
  (SELECT string_agg(concat_ws(',', r.oid, r.rulename, r.ev_class, r.ev_type, r.ev_enabled,
            md5(r.ev_action::text)), ';' ORDER BY r.oid)
     FROM pg_rewrite r WHERE r.oid >= 16384),
  (SELECT string_agg(concat_ws(',', o.oid, o.polname, o.polrelid, o.polcmd, o.polpermissive,
            o.polroles, md5(o.polqual::text), md5(o.polwithcheck::text)), ';' ORDER BY o.oid)
     FROM pg_policy o),
  (SELECT string_agg(concat_ws(',', s.seqrelid, s.seqtypid, s.seqstart, s.seqincrement, s.seqmax,
            s.seqmin, s.seqcache, s.seqcycle), ';' ORDER BY s.seqrelid)
     FROM pg_sequence s),
  (SELECT string_agg(concat_ws(',', h.inhrelid, h.inhparent, h.inhseqno), ';' ORDER BY h.inhrelid, h.inhseqno)
     FROM pg_inherits h),
  (SELECT string_agg(concat_ws(',', x.oid, x.extname, x.extowner, x.extnamespace, x.extversion,
            x.extconfig, x.extcondition), ';' ORDER BY x.oid)
     FROM pg_extension x),
  (SELECT string_agg(x, ';' ORDER BY x) FROM (
     SELECT concat_ws(',', d.objoid, d.classoid, d.objsubid, md5(d.description)) AS x
       FROM pg_description d WHERE d.objoid >= 16384
     UNION ALL
     SELECT concat_ws(',', d.objoid, d.classoid, d.objsubid, md5(d.description))
       FROM pg_namespace n JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass
      WHERE n.oid < 16384) comments),
  (SELECT string_agg(concat_ws(',', a.oid, a.defaclrole, a.defaclnamespace, a.defaclobjtype, a.defaclacl), ';' ORDER BY a.oid)
     FROM pg_default_acl a),
  (SELECT string_agg(concat_ws(',', l.oid, l.lomowner, coalesce(l.lomacl, acldefault('L', l.lomowner))), ';' ORDER BY l.oid)
     FROM pg_largeobject_metadata l),
  (SELECT string_agg(concat_ws(',', v.oid, v.evtname, v.evtenabled), ';' ORDER BY v.oid)
     FROM pg_event_trigger v),
  (SELECT string_agg(concat_ws(',', s.oid, s.stxname, s.stxrelid, s.stxkeys), ';' ORDER BY s.oid)
     FROM pg_statistic_ext s),
  -- Catalogs tests rarely touch: the user-level objects' ids are enough.
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_operator WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_opclass WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_opfamily WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_cast WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_collation WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_conversion WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_ts_config WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_ts_dict WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_ts_parser WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_ts_template WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_foreign_data_wrapper WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_foreign_server WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_user_mapping WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_publication WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_transform WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_language WHERE oid >= 16384),
  (SELECT string_agg(oid::text, ',' ORDER BY oid) FROM pg_am WHERE oid >= 16384)
))
