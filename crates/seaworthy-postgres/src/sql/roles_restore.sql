-- Statements that put the baseline's roles back as they were: attributes and passwords, role
-- and database settings, memberships of the roles that are not predefined (pg_*).
SELECT concat_ws(E';\n',
  (SELECT string_agg(format('ALTER ROLE %I WITH %s %s %s %s %s %s %s CONNECTION LIMIT %s PASSWORD %s%s',
            a.rolname,
            CASE WHEN a.rolsuper THEN 'SUPERUSER' ELSE 'NOSUPERUSER' END,
            CASE WHEN a.rolinherit THEN 'INHERIT' ELSE 'NOINHERIT' END,
            CASE WHEN a.rolcreaterole THEN 'CREATEROLE' ELSE 'NOCREATEROLE' END,
            CASE WHEN a.rolcreatedb THEN 'CREATEDB' ELSE 'NOCREATEDB' END,
            CASE WHEN a.rolcanlogin THEN 'LOGIN' ELSE 'NOLOGIN' END,
            CASE WHEN a.rolreplication THEN 'REPLICATION' ELSE 'NOREPLICATION' END,
            CASE WHEN a.rolbypassrls THEN 'BYPASSRLS' ELSE 'NOBYPASSRLS' END,
            a.rolconnlimit,
            coalesce(quote_literal(a.rolpassword), 'NULL'),
            CASE WHEN a.rolvaliduntil IS NULL THEN '' ELSE format(' VALID UNTIL %L', a.rolvaliduntil) END),
          E';\n' ORDER BY a.oid)
     FROM pg_authid a WHERE a.rolname !~ '^pg_'),
  (SELECT string_agg(format('ALTER ROLE %I RESET ALL', a.rolname), E';\n' ORDER BY a.oid)
     FROM pg_authid a WHERE a.rolname !~ '^pg_'),
  format('ALTER DATABASE %I RESET ALL', current_database()),
  (SELECT string_agg(
            CASE WHEN s.setrole = 0 THEN format('ALTER DATABASE %I SET %s = %L', current_database(), split_part(c, '=', 1), substr(c, strpos(c, '=') + 1))
                 WHEN s.setdatabase = 0 THEN format('ALTER ROLE %I SET %s = %L', r.rolname, split_part(c, '=', 1), substr(c, strpos(c, '=') + 1))
                 ELSE format('ALTER ROLE %I IN DATABASE %I SET %s = %L', r.rolname, current_database(), split_part(c, '=', 1), substr(c, strpos(c, '=') + 1))
            END, E';\n')
     FROM pg_db_role_setting s LEFT JOIN pg_authid r ON r.oid = s.setrole
          CROSS JOIN LATERAL unnest(s.setconfig) c
    WHERE s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))),
  (SELECT string_agg(format('GRANT %I TO %I%s', g.rolname, m.rolname,
            CASE WHEN am.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END), E';\n')
     FROM pg_auth_members am JOIN pg_authid g ON g.oid = am.roleid JOIN pg_authid m ON m.oid = am.member
    WHERE m.rolname !~ '^pg_')
)
