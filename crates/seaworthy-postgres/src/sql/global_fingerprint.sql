-- A digest of the cluster-wide state a test can change besides the current database's own
-- objects: roles (attributes, passwords, memberships), role and database settings, and the
-- databases that exist, less Seaworthy's own (the template, the pool, isolated databases).
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(',', a.oid, a.rolname, a.rolsuper, a.rolinherit, a.rolcreaterole,
            a.rolcreatedb, a.rolcanlogin, a.rolreplication, a.rolbypassrls, a.rolconnlimit,
            a.rolpassword, a.rolvaliduntil), ';' ORDER BY a.oid)
     FROM pg_authid a),
  (SELECT string_agg(concat_ws(',', m.roleid, m.member, m.admin_option), ';' ORDER BY m.roleid, m.member)
     FROM pg_auth_members m),
  (SELECT string_agg(concat_ws(',', CASE s.setdatabase WHEN 0 THEN '-' ELSE 'db' END, s.setrole,
            s.setconfig), ';' ORDER BY s.setdatabase, s.setrole)
     FROM pg_db_role_setting s
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))),
  (SELECT string_agg(d.datname, ';' ORDER BY d.datname)
     FROM pg_database d
    WHERE d.datname <> {template} AND NOT starts_with(d.datname, {pool_prefix})
      AND NOT starts_with(d.datname, {iso_prefix}))
))
