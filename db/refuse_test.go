package db_test

import (
	"strings"
	"testing"

	"ariga.io/atlas/sql/migrate"

	"github.com/deploydb/deploydb/db"
)

// TestCheckFile runs the refusal check on single files: every statement
// form the migrator must refuse is found with its kind and statement
// number, and the look-alikes (keywords in comments, strings, dollar-quoted
// bodies, identifiers; positive timeouts) pass.
func TestCheckFile(t *testing.T) {
	t.Parallel()
	const (
		tx  = db.RefusedTransactionControl
		off = db.RefusedTimeoutOff
	)
	refused := []struct {
		name, sql string
		kind      string
		stmt      int // 1-based statement number of the refusal
		reason    string
	}{
		{"begin without commit", "BEGIN;\nALTER TABLE a ADD COLUMN c int;\n", tx, 1, "BEGIN is transaction control"},
		{"begin lower case after a comment", "-- set up\nALTER TABLE a ADD COLUMN c int;\n/* here */ begin;\n", tx, 2, "BEGIN"},
		{"begin commit then a failing statement", "BEGIN;\nALTER TABLE a ADD COLUMN c int;\nCOMMIT;\nINSERT INTO missing VALUES (1);\n", tx, 1, "BEGIN"},
		{"commit", "ALTER TABLE a ADD COLUMN c int;\nCOMMIT;\n", tx, 2, "COMMIT is"},
		{"commit and chain", "COMMIT AND CHAIN;\n", tx, 1, "COMMIT"},
		{"end", "ALTER TABLE a ADD COLUMN c int;\nEND;\n", tx, 2, "END is"},
		{"end work", "END WORK;\n", tx, 1, "END"},
		{"start transaction", "START TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n", tx, 1, "START TRANSACTION"},
		{"begin transaction grouped with end", "BEGIN TRANSACTION;\nALTER TABLE a ADD COLUMN c int;\nEND;\n", tx, 1, "BEGIN, END are"},
		{"begin work", "BEGIN WORK;\n", tx, 1, "BEGIN"},
		{"rollback", "ROLLBACK;\n", tx, 1, "ROLLBACK is"},
		{"abort", "ABORT;\n", tx, 1, "ABORT"},
		{"savepoint", "SAVEPOINT before_c;\nALTER TABLE a ADD COLUMN c int;\n", tx, 1, "SAVEPOINT"},
		{"release savepoint", "RELEASE SAVEPOINT before_c;\n", tx, 1, "RELEASE"},
		{"release", "RELEASE before_c;\n", tx, 1, "RELEASE"},
		{"rollback to savepoint", "ROLLBACK TO SAVEPOINT before_c;\n", tx, 1, "ROLLBACK TO"},
		{"rollback to", "ROLLBACK TO before_c;\n", tx, 1, "ROLLBACK TO"},
		{"set transaction", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE;\n", tx, 1, "SET TRANSACTION"},
		{"set local transaction", "SET LOCAL TRANSACTION READ ONLY;\n", tx, 1, "SET TRANSACTION"},
		{"set session characteristics", "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY;\n", tx, 1, "SET SESSION CHARACTERISTICS"},
		{"set transaction_read_only", "SET transaction_read_only = on;\n", tx, 1, "SET transaction_read_only"},
		{"set default_transaction_isolation", "SET SESSION default_transaction_isolation TO 'serializable';\n", tx, 1, "default_transaction_isolation"},
		{"prepare transaction", "PREPARE TRANSACTION 'deploy';\n", tx, 1, "PREPARE TRANSACTION"},
		{"commit prepared", "COMMIT PREPARED 'deploy';\n", tx, 1, "COMMIT PREPARED"},
		{"rollback prepared", "ROLLBACK PREPARED 'deploy';\n", tx, 1, "ROLLBACK PREPARED"},

		{"set lock_timeout 0", "SET lock_timeout = 0;\nALTER TABLE a ADD COLUMN c int;\n", off, 1, "SET lock_timeout to 0, which switches it off"},
		{"set lock_timeout to '0'", "SET lock_timeout TO '0';\n", off, 1, "switches it off"},
		{"set local lock_timeout 0ms", "SET LOCAL lock_timeout = '0ms';\n", off, 1, "switches it off"},
		{"set session statement_timeout 0", "SET SESSION statement_timeout = 0;\n", off, 1, "SET statement_timeout to 0"},
		{"set quoted upper-case name", `SET "LOCK_TIMEOUT" = 0;` + "\n", off, 1, "SET lock_timeout"},
		{"set lock_timeout rounds to 0", "SET lock_timeout = '0.4';\n", off, 1, "rounds to 0 ms"},
		{"set lock_timeout 400us", "SET lock_timeout = '400us';\n", off, 1, "rounds to 0 ms"},
		{"set lock_timeout default", "SET lock_timeout TO DEFAULT;\n", off, 1, "DEFAULT"},
		{"set lock_timeout expression", "SET lock_timeout = (1 - 1);\n", off, 1, "not a constant"},
		{"set lock_timeout bad unit", "SET lock_timeout = '5S';\n", off, 1, "not a duration"},
		{"reset lock_timeout", "RESET lock_timeout;\n", off, 1, "RESET lock_timeout"},
		{"reset statement_timeout", "RESET statement_timeout;\n", off, 1, "RESET statement_timeout"},
		{"reset all", "RESET ALL;\n", off, 1, "RESET ALL"},
		{"discard all", "-- atlas:txmode none\n\nDISCARD ALL;\n", off, 1, "DISCARD ALL"},
		{"set_config statement_timeout", "SELECT set_config('statement_timeout', '0', false);\n", off, 1, "set_config of statement_timeout to 0, which switches it off"},
		{"set_config qualified, mixed case", "SELECT pg_catalog.SET_CONFIG('Lock_Timeout', '0s', true);\n", off, 1, "set_config of lock_timeout"},
		{"set_config computed value", "SELECT set_config('lock_timeout', 0::text, true);\n", off, 1, "not a constant"},
		{"set_config of a transaction setting", "SELECT set_config('transaction_read_only', 'on', true);\n", tx, 1, "set_config of transaction_read_only"},
		{"update pg_settings", "UPDATE pg_settings SET setting = '0' WHERE name = 'lock_timeout';\n", off, 1, "UPDATE pg_settings"},
		{"do block set", "DO $$\nBEGIN\n  SET lock_timeout = 0;\nEND\n$$;\n", off, 1, "SET lock_timeout to 0"},
		{"do block perform set_config", "DO $body$ BEGIN PERFORM set_config('statement_timeout', '0', true); END $body$;\n", off, 1, "set_config of statement_timeout"},
		{"do block execute", "DO LANGUAGE plpgsql $$ BEGIN IF true THEN EXECUTE 'SET LOCAL lock_timeout = 0'; END IF; END $$;\n", off, 1, "SET lock_timeout to 0"},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rs, err := db.CheckFile(migrate.NewLocalFile("20260601000001_x.sql", []byte(c.sql)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 {
				t.Fatalf("not refused:\n%s", c.sql)
			}
			r := rs[0]
			if r.Kind != c.kind || r.Statement != c.stmt || r.File != "20260601000001_x.sql" || !strings.Contains(r.Reason, c.reason) {
				t.Fatalf("refusal %+v\nwant kind %s, statement %d, reason containing %q", r, c.kind, c.stmt, c.reason)
			}
			if !strings.Contains(r.String(), r.File) || !strings.Contains(r.String(), strings.Fields(r.SQL)[0]) {
				t.Errorf("the message names neither file nor statement: %s", r)
			}
		})
	}

	passes := []struct{ name, sql string }{
		{"plpgsql function with BEGIN and END in dollar quotes", `CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  COMMIT; -- never reached: the body is a string until the trigger fires
  RETURN NEW;
END
$$;
`},
		{"sql-standard body", "CREATE OR REPLACE FUNCTION plus(a int, b int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN a ELSE 0 END + b;\nEND;\n"},
		{"procedure body", "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC INSERT INTO a VALUES (1); END;\n"},
		{"column named begin", "ALTER TABLE a ADD COLUMN begin timestamptz;\nCREATE TABLE windows (begin int, \"end\" int, commit text);\n"},
		{"comment mentioning COMMIT", "-- Do not COMMIT here; BEGIN is the migrator's.\nALTER TABLE a ADD COLUMN c int; /* ROLLBACK; */\n"},
		{"string literals", "COMMENT ON COLUMN a.c IS 'BEGIN; COMMIT; SET lock_timeout = 0';\nINSERT INTO a (note) VALUES ('it''s; ROLLBACK;'), (E'\\n; END;');\n"},
		{"positive lock_timeout", "SET lock_timeout = '5s';\nALTER TABLE a ADD COLUMN c int;\n"},
		{"positive timeouts in other forms", "SET LOCAL lock_timeout TO 5000;\nSET statement_timeout = '1h';\nSELECT set_config('lock_timeout', '10s', true);\nSET lock_timeout = '0.6';\n"},
		{"function with a SET clause", "CREATE FUNCTION slow() RETURNS void LANGUAGE sql SET statement_timeout = 0 AS $$ SELECT pg_sleep(1) $$;\n"},
		{"other settings", "SET search_path = public;\nRESET search_path;\nSET LOCAL work_mem = '64MB';\nSELECT set_config('app.user', '0', true);\n"},
		{"update of a column named setting", "UPDATE settings SET setting = '0' WHERE name = 'lock_timeout';\n"},
		{"prepared statement named transaction", "PREPARE transaction AS SELECT 1;\n"},
		{"do block without timeouts", "DO $$ BEGIN UPDATE a SET c = 0; RAISE NOTICE 'SET lock_timeout = 0'; END $$;\n"},
	}
	for _, c := range passes {
		t.Run("passes/"+c.name, func(t *testing.T) {
			t.Parallel()
			rs, err := db.CheckFile(migrate.NewLocalFile("20260601000001_x.sql", []byte(c.sql)))
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) != 0 {
				t.Fatalf("refused: %v", rs)
			}
		})
	}
}

// TestEmbeddedMigrationsPassCheck keeps the shipped migrations free of
// refused statements.
func TestEmbeddedMigrationsPassCheck(t *testing.T) {
	t.Parallel()
	files, err := db.Dir().Files()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rs, err := db.CheckFile(f)
		if err != nil || len(rs) != 0 {
			t.Errorf("%s: %v %v", f.Name(), err, rs)
		}
	}
}
