-- Revokes every membership of the roles that are not predefined (pg_*); the baseline's are
-- granted again by the restore statements that follow.
DO $seaworthy$
DECLARE
  stmt text;
BEGIN
  FOR stmt IN
    SELECT format('REVOKE %I FROM %I GRANTED BY %I CASCADE', g.rolname, m.rolname, gr.rolname)
      FROM pg_auth_members am JOIN pg_authid g ON g.oid = am.roleid JOIN pg_authid m ON m.oid = am.member
           JOIN pg_authid gr ON gr.oid = am.grantor
     WHERE m.rolname !~ '^pg_'
  LOOP
    BEGIN EXECUTE stmt; EXCEPTION WHEN OTHERS THEN NULL; END;
  END LOOP;
END
$seaworthy$
