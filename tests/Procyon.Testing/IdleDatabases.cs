namespace Procyon.Testing;

/// <summary>Many published databases whose scheduled tables hold rows due much later: the crowd a scheduler must not slow down for.</summary>
public static class IdleDatabases
{
    /// <summary>
    /// Databases <c>idle-0</c> … each running the example module, whose <c>reminder</c> table holds
    /// one row due in an hour and whose <c>slow_job</c> table is empty. The first is published;
    /// publishing a thousand would mostly time <c>wasm-opt</c>, so the others are copies of its
    /// catalog rows and tables (their rows' trigger is the first's function), which a server
    /// started afterwards loads like any published database.
    /// </summary>
    public static async Task CreateAsync(TestDatabase database, int count)
    {
        await using (var publisher = await TestServer.StartAsync(database))
        {
            (await publisher.PublishAsync("idle-0", "example")).EnsureSuccessStatusCode();
        }
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, _) => await database.ExecuteAsync($$"""
            DO $$
            DECLARE
                t record;
            BEGIN
                IF {{i}} > 0 THEN
                    CREATE SCHEMA "db_idle-{{i}}";
                    FOR t IN SELECT c.relname, EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = '__procyon_due') AS scheduled
                             FROM pg_class c WHERE c.relnamespace = '"db_idle-0"'::regnamespace AND c.relkind = 'r' LOOP
                        EXECUTE format('CREATE TABLE "db_idle-{{i}}".%I (LIKE "db_idle-0".%I INCLUDING ALL)', t.relname, t.relname);
                        IF t.scheduled THEN
                            EXECUTE format('CREATE TRIGGER procyon_due BEFORE INSERT OR UPDATE ON "db_idle-{{i}}".%I FOR EACH ROW EXECUTE FUNCTION "db_idle-0".__procyon_due()', t.relname);
                        END IF;
                    END LOOP;
                    INSERT INTO procyon.databases (name, wasm, prepared, sha256, owner)
                        SELECT 'idle-{{i}}', wasm, prepared, sha256, owner FROM procyon.databases WHERE name = 'idle-0';
                    INSERT INTO procyon.tables (db, name, definition) SELECT 'idle-{{i}}', name, definition FROM procyon.tables WHERE db = 'idle-0';
                END IF;
                INSERT INTO "db_idle-{{i}}".reminder (scheduled_at, text) VALUES (jsonb_build_object('Time', (now() + interval '1 hour')::text), 'idle');
            END $$
            """));
    }
}
