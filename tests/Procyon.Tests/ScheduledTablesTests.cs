using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;

namespace Procyon.Tests;

/// <summary>Rows of scheduled tables run their reducer or procedure when due, from Postgres.</summary>
public sealed class ScheduledTablesTests(ServerFixture fixture) : ServerTest(fixture)
{
    private readonly ServerFixture _fixture = fixture;

    [Fact]
    public async Task A_one_shot_row_runs_its_reducer_once_then_is_deleted_and_the_result_is_pushed()
    {
        await using var results = await ResultSubscription.StartAsync(Server, "example", "send_reminder");

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("example", "schedule_reminder", """["tea time", 300]""")).StatusCode);

        var result = await results.NextAsync("send_reminder");
        Assert.Equal("schedule", result.GetProperty("origin").GetString());
        Assert.Equal("ok", result.GetProperty("status").GetString());
        Assert.True(result.GetProperty("scheduleId").GetInt64() > 0);
        Assert.Equal(CallerOfModule("example"), result.GetProperty("caller").GetString());
        Assert.Contains("reminder: tea time", await LogsAsync("example"));
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM db_example.reminder WHERE text = 'tea time'"));
    }

    [Fact]
    public async Task A_row_due_in_the_past_runs_at_once()
    {
        var stopwatch = Stopwatch.StartNew();
        await Server.CallAsync("example", "schedule_reminder", """["right away", 0]""");

        await EventuallyAsync(async () => (await LogsAsync("example")).Contains("reminder: right away", StringComparison.Ordinal));
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"took {stopwatch.Elapsed}");
    }

    [Fact]
    public async Task A_procedure_target_runs_and_its_result_is_pushed()
    {
        await using var results = await ResultSubscription.StartAsync(Server, "example", "run_slow_job");

        await Server.CallAsync("example", "schedule_slow_job", "[21, 100]");

        var result = await results.NextAsync("run_slow_job");
        Assert.Equal(42, result.GetProperty("value").GetInt32());
        Assert.Equal("schedule", result.GetProperty("origin").GetString());
        Assert.InRange(result.GetProperty("durationMicros").GetInt64(), 100_000, 5_000_000);
        await EventuallyAsync(async () => await CountAsync("SELECT count(*) FROM db_example.slow_job") == 0);
    }

    [Fact]
    public async Task An_interval_row_runs_repeatedly_until_deleted()
    {
        var before = await CounterAsync();
        await Server.CallAsync("ledger", "start_ticking", "[100, 1000]");

        await EventuallyAsync(async () => await CounterAsync() >= before + 5000);
        await Server.CallAsync("ledger", "stop_ticking", "");
        await Task.Delay(300);
        var stopped = await CounterAsync();
        await Task.Delay(600);

        Assert.Equal(stopped, await CounterAsync());
        Assert.Equal(0, (stopped - before) % 1000);
    }

    [Fact]
    public async Task An_interval_row_with_a_procedure_target_runs_repeatedly_until_deleted()
    {
        await Server.CallAsync("ledger", "start_beating", "[100]");

        await EventuallyAsync(async () => await CountAsync("SELECT count(*) FROM db_ledger.beat_log") >= 5);
        await Server.CallAsync("ledger", "stop_beating", "");
        await Task.Delay(300);
        var stopped = await CountAsync("SELECT count(*) FROM db_ledger.beat_log");
        await Task.Delay(600);

        Assert.Equal(stopped, await CountAsync("SELECT count(*) FROM db_ledger.beat_log"));
        // Procedure intervals count from the end of each run: beats are at least the interval apart.
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM (SELECT at - lag(at) OVER (ORDER BY at) AS gap FROM db_ledger.beat_log) g WHERE gap < interval '100 ms'"));
    }

    [Fact]
    public async Task Publishing_indexes_each_scheduled_table_and_deleting_the_database_removes_its_index_rows()
    {
        (await Server.PublishAsync("indexed", "ledger")).EnsureSuccessStatusCode();
        // Every table with a due column, the scheduled ones, has its index row.
        var scheduled = await CountAsync("""
            SELECT count(*) FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
            WHERE n.nspname = 'db_indexed' AND c.relkind = 'r' AND a.attname = '__procyon_due'
            """);
        Assert.True(scheduled > 5, $"ledger has {scheduled} scheduled tables");
        Assert.Equal(scheduled, await CountAsync("SELECT count(*) FROM procyon.due WHERE db = 'indexed'"));

        (await Server.PublishBytesAsync("indexed", await File.ReadAllBytesAsync(Modules.PathOf("ledger")), "?clear=true")).EnsureSuccessStatusCode();
        Assert.Equal(scheduled, await CountAsync("SELECT count(*) FROM procyon.due WHERE db = 'indexed'"));

        (await Server.DeleteAsync("indexed")).EnsureSuccessStatusCode();
        Assert.Equal(0, await CountAsync("SELECT count(*) FROM procyon.due WHERE db = 'indexed'"));
    }

    [Fact]
    public async Task Deleting_a_row_cancels_it()
    {
        await Server.CallAsync("example", "schedule_reminder", """["never sent", 2500]""");
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("example", "cancel_reminders", "")).StatusCode);

        await Task.Delay(3000);

        Assert.DoesNotContain("reminder: never sent", await LogsAsync("example"));
    }

    [Fact]
    public async Task A_failing_scheduled_reducer_is_reported_once_and_not_retried() =>
        await AssertFailureReportedOnceAsync("fail_doomed", "schedule_doomed", "doomed to fail", "doomed");

    [Fact]
    public async Task A_failing_row_with_retries_runs_again_and_only_its_last_failure_is_reported()
    {
        var result = await AssertFailureReportedOnceAsync("fail_retrying", "schedule_doomed_twice", "doomed, again", "doomed_twice");

        var runs = (await LogsAsync("ledger")).Split($"retrying doom {result.GetProperty("scheduleId").GetInt64()}\"").Length - 1;
        Assert.Equal(3, runs);
    }

    /// <summary>Schedules a row whose reducer always fails: one failure reaches subscribers, none after it, and the row is gone.</summary>
    private async Task<System.Text.Json.JsonElement> AssertFailureReportedOnceAsync(string function, string schedule, string error, string table)
    {
        await using var results = await ResultSubscription.StartAsOwnerAsync(Server, "ledger", function);

        await Server.CallAsync("ledger", schedule, "");

        var result = await results.NextAsync(function);
        Assert.Equal("error", result.GetProperty("status").GetString());
        Assert.Equal(error, result.GetProperty("error").GetString());
        await Task.Delay(500);
        Assert.False(results.HasMore, "a failure was reported before the retries were spent, or the row ran again after its last");
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM db_ledger.{table}"));
        return result;
    }

    [Fact]
    public async Task A_flaky_procedure_row_succeeds_on_a_retry_after_growing_backoffs()
    {
        await using var results = await ResultSubscription.StartAsOwnerAsync(Server, "ledger", "run_flaky");

        await Server.CallAsync("ledger", "schedule_flaky", "[2]");

        var result = await results.NextAsync("run_flaky");
        Assert.Equal("ok", result.GetProperty("status").GetString());
        Assert.Equal(3, result.GetProperty("value").GetInt32());
        var id = result.GetProperty("scheduleId").GetInt64();
        // The first retry 10-20 ms after the failure (20 ms, jittered), the second 20-40 ms.
        var gaps = await _fixture.Database.ScalarAsync<double[]>($"""
            SELECT array_agg(gap ORDER BY id) FROM (
                SELECT id, extract(epoch FROM at - lag(at) OVER (ORDER BY id))::float8 AS gap FROM db_ledger.flaky_run WHERE flaky = {id}) AS runs
            WHERE gap IS NOT NULL
            """);
        Assert.Equal(2, gaps.Length);
        Assert.True(gaps[0] >= 0.010 && gaps[1] >= 0.020, $"retried after {string.Join(" and ", gaps)} s");
        Assert.Equal(0, await CountAsync($"SELECT count(*) FROM db_ledger.flaky WHERE scheduled_id = {id}"));
        await Task.Delay(300);
        Assert.False(results.HasMore, "the failed runs before the retry that succeeded were reported");
    }

    [Fact]
    public async Task A_cron_row_runs_at_each_occurrence_and_a_bad_expression_is_reported_once_and_deleted()
    {
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "start_chiming", """["* * * * * *"]""")).StatusCode);
        await EventuallyAsync(async () => await CountAsync("SELECT count(*) FROM db_ledger.chime_log") >= 3);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "stop_chiming", "")).StatusCode);
        // Every second, on the second: each run was due at a whole second, a later one than the
        // run before (a loaded machine may skip an occurrence, never run one twice).
        var dues = (await SchedulerViewAsync()).GetProperty("recent").EnumerateArray().Select(run => run.GetProperty("due").GetDateTimeOffset()).Reverse().ToList();
        Assert.True(dues.Count >= 3, $"{dues.Count} runs in the scheduler view");
        Assert.All(dues, due => Assert.Equal(0, due.Ticks % TimeSpan.TicksPerSecond));
        Assert.All(dues.Zip(dues.Skip(1)), pair => Assert.True(pair.Second > pair.First, $"{pair.First:O} ran again at {pair.Second:O}"));

        // Five fields: at second 0; a yearly schedule's first occurrence is next New Year, UTC.
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "start_chiming", """["0 0 1 1 *"]""")).StatusCode);
        var newYear = new DateTime(DateTime.UtcNow.Year + 1, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        await EventuallyAsync(async () => await _fixture.Database.ScalarAsync<DateTime>("SELECT \"__procyon_due\" FROM db_ledger.chime") == newYear);
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "stop_chiming", "")).StatusCode);

        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "start_chiming", """["every tuesday"]""")).StatusCode);
        await EventuallyAsync(async () => await CountAsync("SELECT count(*) FROM db_ledger.chime") == 0);
        Assert.Contains("scheduled_at is not a cron expression ('every tuesday'", (await SchedulerViewAsync()).GetProperty("failures").ToString(), StringComparison.Ordinal);

        var tooLong = await Server.CallAsync("ledger", "start_chiming", $"""["{new string('*', 121)}"]""");
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooLong.StatusCode);
        Assert.Contains("at most 120 bytes", await tooLong.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>The console's scheduler view of ledger's <c>chime</c> table, as its owner reads it.</summary>
    private async Task<System.Text.Json.JsonElement> SchedulerViewAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/databases/ledger/scheduler");
        request.Headers.Authorization = new("Bearer", await Server.OwnerTokenAsync());
        using var response = await Server.Http.SendAsync(request);
        var tables = System.Text.Json.JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return tables.EnumerateArray().Single(table => table.GetProperty("table").GetString() == "chime");
    }

    private static string CallerOfModule(string database) => Procyon.Runtime.CallDispatcher.ModuleIdentity(database).ToString();

    private Task<string> LogsAsync(string database) => Server.LogsAsync(database);

    private async Task<long> CounterAsync() =>
        long.Parse(await (await Server.CallAsync("ledger", "counter_value", "")).Content.ReadAsStringAsync(), System.Globalization.CultureInfo.InvariantCulture);

    private Task<long> CountAsync(string sql) => CountAsync(_fixture.Database, sql);

    internal static Task<long> CountAsync(TestDatabase database, string sql) => database.ScalarAsync<long>(sql);

    internal static async Task EventuallyAsync(Func<Task<bool>> condition)
    {
        var waited = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(15), "the condition did not hold within 15 s");
            await Task.Delay(50);
        }
    }
}

/// <summary>Scheduled rows outlive the server that was going to run them, and the server version that wrote them.</summary>
public sealed class ScheduledRestartTests
{
    [Fact]
    public async Task Rows_due_while_no_server_runs_fire_after_a_restart()
    {
        await using var database = await TestDatabase.CreateAsync();
        var owner = await PublishExampleAsync(database, async first =>
            Assert.Equal(HttpStatusCode.OK, (await first.CallAsync("example", "schedule_reminder", """["after the restart", 1500]""")).StatusCode));
        await Task.Delay(1700);

        await using var second = await TestServer.StartAsync(database);

        await ScheduledTablesTests.EventuallyAsync(async () =>
            (await second.LogsAsync("example", owner)).Contains("reminder: after the restart", StringComparison.Ordinal));
    }

    /// <summary>
    /// A deployment from before the due index: its scheduled tables enter the index when a server
    /// starts, and their rows run.
    /// </summary>
    [Fact]
    public async Task Scheduled_tables_published_before_the_due_index_existed_are_indexed_at_start_and_their_rows_run()
    {
        await using var database = await TestDatabase.CreateAsync();
        var owner = await PublishExampleAsync(database, _ => Task.CompletedTask);
        // A catalog an older server made: no due index, and that server's catalog version.
        await database.ExecuteAsync("DROP TABLE procyon.due; UPDATE procyon.settings SET value = 'older' WHERE key = 'catalog'");
        await database.ExecuteAsync("""INSERT INTO db_example.reminder (scheduled_at, text) VALUES (jsonb_build_object('Time', (now() + interval '1 second')::text), 'from before')""");

        await using var second = await TestServer.StartAsync(database);

        Assert.Equal(2, await ScheduledTablesTests.CountAsync(database, "SELECT count(*) FROM procyon.due WHERE db = 'example'"));
        await ScheduledTablesTests.EventuallyAsync(async () =>
            (await second.LogsAsync("example", owner)).Contains("reminder: from before", StringComparison.Ordinal));
    }

    /// <summary>
    /// A deployment from before cron schedules and retries: its scheduled tables get the attempts
    /// column and its schemas' due functions learn cron when a server of this version starts, so
    /// a cron row inserted afterwards arms and runs.
    /// </summary>
    [Fact]
    public async Task Scheduled_tables_written_before_cron_and_retries_learn_them_at_start()
    {
        await using var database = await TestDatabase.CreateAsync();
        var owner = await PublishExampleAsync(database, _ => Task.CompletedTask);
        // The function and tables an older server wrote (no cron, no retries), and its catalog version.
        await database.ExecuteAsync("""
            DO $older$ BEGIN
                EXECUTE replace(replace(pg_get_functiondef('db_example.__procyon_due'::regproc),
                    'WHEN NEW.scheduled_at ? ''Cron'' THEN ''epoch''::timestamptz', ''), 'NEW."__procyon_attempts" := 0;', '');
            END $older$;
            ALTER TABLE db_example.reminder DROP COLUMN "__procyon_attempts";
            ALTER TABLE db_example.slow_job DROP COLUMN "__procyon_attempts";
            UPDATE procyon.settings SET value = 'older' WHERE key = 'catalog'
            """);
        const string Insert = """INSERT INTO db_example.reminder (scheduled_at, text) VALUES ('{"Cron": "* * * * * *"}', 'on a cron schedule')""";
        await Assert.ThrowsAsync<Npgsql.PostgresException>(() => database.ExecuteAsync(Insert));

        await using var second = await TestServer.StartAsync(database);
        Assert.Equal(2, await ScheduledTablesTests.CountAsync(database, "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'db_example' AND column_name = '__procyon_attempts'"));
        await database.ExecuteAsync(Insert);

        await ScheduledTablesTests.EventuallyAsync(async () =>
            (await second.LogsAsync("example", owner)).Contains("reminder: on a cron schedule", StringComparison.Ordinal));
    }

    /// <summary>
    /// A database published before <c>ScheduleAt</c> had <c>Cron</c> republishes with a module built
    /// since without <c>?clear=true</c>: its scheduled rows stay, and the catalog learns the new type.
    /// </summary>
    [Fact]
    public async Task A_scheduled_table_published_before_cron_republishes_and_keeps_its_rows()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await TestServer.StartAsync(database);
        (await server.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("example", "schedule_reminder", """["kept", 600000]""")).StatusCode);
        await database.ExecuteAsync("UPDATE procyon.tables SET definition = replace(definition, ' | Cron(String)', '') WHERE db = 'example'");

        Assert.Equal(HttpStatusCode.OK, (await server.PublishAsync("example", "example")).StatusCode);

        Assert.Equal(1, await ScheduledTablesTests.CountAsync(database, "SELECT count(*) FROM db_example.reminder WHERE text = 'kept'"));
        Assert.Equal(2, await ScheduledTablesTests.CountAsync(database, "SELECT count(*) FROM procyon.tables WHERE db = 'example' AND definition LIKE '%| Cron(String);%'"));
    }

    /// <summary>Publishes the example module on a server that stops after <paramref name="meanwhile"/>; returns the owner's token.</summary>
    private static async Task<string> PublishExampleAsync(TestDatabase database, Func<TestServer, Task> meanwhile)
    {
        await using var first = await TestServer.StartAsync(database);
        (await first.PublishAsync("example", "example")).EnsureSuccessStatusCode();
        await meanwhile(first);
        return await first.OwnerTokenAsync();
    }
}

/// <summary>Scheduled rows across server processes on one Postgres: side by side, and one killed mid-firing.</summary>
public sealed class ScheduledProcessTests
{
    /// <summary>Short leases, so the rows a killed server held come due again soon.</summary>
    private static readonly string[] ShortLeases = ["--Procyon:Scheduler:ReducerLease=00:00:02", "--Procyon:Scheduler:ProcedureLease=00:00:02"];

    [Fact]
    public async Task Two_server_processes_run_each_of_1000_due_rows_exactly_once()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var first = await ServerProcess.StartAsync(database);
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        await using var second = await ServerProcess.StartAsync(database);

        Assert.Equal(HttpStatusCode.OK, (await first.CallAsync("ledger", "schedule_hits", "[1000, 0, 2000]")).StatusCode);

        await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM db_ledger.hit") == 0);
        Assert.Equal(1000, await CountAsync(database, "SELECT count(*) FROM db_ledger.hit_log"));
        Assert.Equal(1000, await CountAsync(database, "SELECT count(DISTINCT hit) FROM db_ledger.hit_log"));
    }

    [Fact]
    public async Task After_a_kill_9_mid_firing_every_reducer_row_ran_exactly_once_and_every_procedure_row_at_least_once()
    {
        await using var database = await TestDatabase.CreateAsync();
        var doomed = await ServerProcess.StartAsync(database, ShortLeases);
        await using (doomed)
        {
            (await doomed.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
            Assert.Equal(HttpStatusCode.OK, (await doomed.CallAsync("ledger", "schedule_hits", "[1000, 500, 1500]")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await doomed.CallAsync("ledger", "schedule_jobs", "[1000, 500, 1500]")).StatusCode);
            await ScheduledTablesTests.EventuallyAsync(async () =>
                await CountAsync(database, "SELECT count(*) FROM db_ledger.hit_log") >= 200 && await CountAsync(database, "SELECT count(*) FROM db_ledger.job_log") >= 200);

            await doomed.KillAsync();
        }
        var left = await CountAsync(database, "SELECT (SELECT count(*) FROM db_ledger.hit) + (SELECT count(*) FROM db_ledger.job)");
        Assert.True(left > 0, "the server had fired every row before it was killed");

        await using var restarted = await ServerProcess.StartAsync(database, ShortLeases);

        await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT (SELECT count(*) FROM db_ledger.hit) + (SELECT count(*) FROM db_ledger.job)") == 0);
        Assert.Equal(1000, await CountAsync(database, "SELECT count(*) FROM db_ledger.hit_log"));
        Assert.Equal(1000, await CountAsync(database, "SELECT count(DISTINCT hit) FROM db_ledger.hit_log"));
        Assert.Equal(1000, await CountAsync(database, "SELECT count(DISTINCT job) FROM db_ledger.job_log"));
        Assert.InRange(await CountAsync(database, "SELECT count(*) FROM db_ledger.job_log"), 1000, 2000);
    }

    private static Task<long> CountAsync(TestDatabase database, string sql) => ScheduledTablesTests.CountAsync(database, sql);
}

/// <summary>
/// One database's scheduled table broken behind the server's back, as another replica's delete or
/// a hand-made change would: every other database's rows still fire on time. In the timing
/// collection: it bounds how late rows run.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class ScheduledIsolationTests
{
    [Theory]
    [InlineData("DROP TABLE db_broken.hit")]
    [InlineData("DROP SCHEMA db_broken CASCADE")]
    [InlineData("ALTER TABLE db_broken.hit RENAME COLUMN __procyon_due TO due")]
    [InlineData("ALTER TABLE db_broken.hit DROP COLUMN scheduled_at")]
    [InlineData("ALTER TABLE db_broken.hit ALTER COLUMN scheduled_at TYPE text USING scheduled_at::text")]
    public async Task Another_databases_rows_fire_on_time_while_one_scheduled_table_is_broken(string sabotage)
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ServerProcess.StartAsync(database);
        // "broken" comes before "healthy" wherever the scheduler goes through databases in order.
        (await server.PublishAsync("broken", "ledger")).EnsureSuccessStatusCode();
        (await server.PublishAsync("healthy", "ledger")).EnsureSuccessStatusCode();
        // Rows due in the broken table too, so that it is claimed and run (a text scheduled_at
        // is claimed and read, and fails only when the batch finishes its rows). Due from 1 s on:
        // no batch holds locks the sabotage would deadlock with.
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("broken", "schedule_hits", "[200, 1000, 2000]")).StatusCode);
        await database.ExecuteAsync(sabotage);

        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("healthy", "schedule_hits", "[200, 0, 2000]")).StatusCode);

        await AssertAllHitsRanOnTimeAsync(database, "healthy", 200);
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("healthy", "counter_value", "")).StatusCode);
    }

    [Fact]
    public async Task Another_databases_rows_fire_while_one_scheduled_table_is_locked_by_a_transaction_that_does_not_end()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ServerProcess.StartAsync(database);
        (await server.PublishAsync("broken", "ledger")).EnsureSuccessStatusCode();
        (await server.PublishAsync("healthy", "ledger")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("broken", "schedule_hits", "[20, 0, 100]")).StatusCode);
        // As a clearing publish whose init reducer never ends would hold it.
        await using var locker = new Npgsql.NpgsqlConnection(database.ConnectionString);
        await locker.OpenAsync();
        await using var transaction = await locker.BeginTransactionAsync();
        await using (var lockTable = new Npgsql.NpgsqlCommand("LOCK TABLE db_broken.hit IN ACCESS EXCLUSIVE MODE", locker, transaction))
        {
            await lockTable.ExecuteNonQueryAsync();
        }

        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("healthy", "schedule_hits", "[200, 0, 2000]")).StatusCode);

        await AssertAllHitsRanOnTimeAsync(database, "healthy", 200, lateness: "3 s");
        Assert.Equal(HttpStatusCode.OK, (await server.Http.GetAsync("/healthz")).StatusCode);
    }

    [Fact]
    public async Task A_broken_scheduled_table_runs_on_time_again_once_its_module_is_republished_with_clear()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var server = await ServerProcess.StartAsync(database);
        (await server.PublishAsync("broken", "ledger")).EnsureSuccessStatusCode();
        await database.ExecuteAsync("DROP TABLE db_broken.hit");
        // Ticks of another table of the same database keep the planner looking (and failing on hit) meanwhile.
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("broken", "start_ticking", "[100, 1]")).StatusCode);
        await ScheduledTablesTests.EventuallyAsync(async () => await TicksAsync(database) >= 1);
        var ticks = await TicksAsync(database);
        // Long enough for hit's back-off to outgrow the lateness allowed below.
        await Task.Delay(8000);
        Assert.True(await TicksAsync(database) >= ticks + 20, "the database's other scheduled table stopped ticking");

        var republished = await server.PublishBytesAsync("broken", await File.ReadAllBytesAsync(Modules.PathOf("ledger")), "?clear=true");
        republished.EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("broken", "schedule_hits", "[50, 0, 500]")).StatusCode);

        await AssertAllHitsRanOnTimeAsync(database, "broken", 50);
    }

    /// <summary>Every hit ran once, none more than <paramref name="lateness"/> after it was due.</summary>
    internal static async Task AssertAllHitsRanOnTimeAsync(TestDatabase database, string name, long count, string lateness = "2 s")
    {
        await ScheduledTablesTests.EventuallyAsync(async () => await ScheduledTablesTests.CountAsync(database, $"SELECT count(*) FROM db_{name}.hit") == 0);
        Assert.Equal(count, await ScheduledTablesTests.CountAsync(database, $"SELECT count(*) FROM db_{name}.hit_log"));
        Assert.Equal(count, await ScheduledTablesTests.CountAsync(database, $"SELECT count(DISTINCT hit) FROM db_{name}.hit_log"));
        Assert.Equal(0, await ScheduledTablesTests.CountAsync(database, $"SELECT count(*) FROM db_{name}.hit_log WHERE ran - due > interval '{lateness}'"));
    }

    private static Task<long> TicksAsync(TestDatabase database) => ScheduledTablesTests.CountAsync(database, "SELECT value FROM db_broken.counter WHERE id = 1");
}

/// <summary>
/// The scheduler's cost follows the tables with due rows, not every scheduled table there is: the
/// due index (<c>procyon.due</c>) tells it which. In the timing collection: it bounds how late rows run.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class ScheduledScaleTests
{
    private const int Idle = 300;

    [Fact]
    public async Task Beside_300_idle_scheduled_databases_one_databases_rows_run_on_time_and_no_idle_table_is_queried()
    {
        await using var database = await TestDatabase.CreateAsync();
        await IdleDatabases.CreateAsync(database, Idle);
        await using var server = await ServerProcess.StartAsync(database);
        (await server.PublishAsync("healthy", "ledger")).EnsureSuccessStatusCode();
        // Settled: every table's index row was refreshed at start (about a second), and Postgres
        // shows the scans that took (a session reports its statistics within 10 s of going idle).
        await Task.Delay(TimeSpan.FromSeconds(11));
        var scans = await IdleScansAsync(database);

        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("healthy", "schedule_hits", "[200, 0, 2000]")).StatusCode);

        await ScheduledIsolationTests.AssertAllHitsRanOnTimeAsync(database, "healthy", 200, lateness: "1 s");
        await Task.Delay(TimeSpan.FromSeconds(2));
        // Scanning every scheduled table at each wake would scan each idle one hundreds of times.
        Assert.InRange(await IdleScansAsync(database) - scans, 0, Idle - 1);
        Assert.Equal(Idle, await ScheduledTablesTests.CountAsync(database, "SELECT count(*) FROM procyon.due WHERE db LIKE 'idle-%' AND tbl = 'reminder' AND next_due > now() + interval '50 minutes'"));
    }

    /// <summary>Index scans plus sequential scans of the idle databases' scheduled tables so far.</summary>
    private static Task<long> IdleScansAsync(TestDatabase database) => ScheduledTablesTests.CountAsync(database, """
        SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::bigint FROM pg_stat_user_tables
        WHERE schemaname LIKE 'db\_idle-%' AND relname IN ('reminder', 'slow_job')
        """);
}

/// <summary>An ill-typed scheduled function, and a range filter on an index of floats, are compile errors that name the trait.</summary>
public sealed class ScheduledFunctionCompileTests
{
    [Fact]
    public async Task A_scheduled_table_naming_a_function_of_the_wrong_shape_or_a_float_filter_does_not_compile()
    {
        var root = Modules.RepositoryRoot();
        var start = new ProcessStartInfo("/usr/bin/cargo", ["check", "--target", "wasm32-unknown-unknown", "--message-format", "short"])
        {
            WorkingDirectory = Path.Combine(root, "tests", "modules", "compile-fail"),
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        // Debian's toolchain has the wasm32 standard library (see deploy/common.sh).
        start.Environment["PATH"] = "/usr/bin:" + Environment.GetEnvironmentVariable("PATH");
        start.Environment["CARGO_TARGET_DIR"] = Path.Combine(root, "src", "rust", "target");
        using var cargo = Process.Start(start)!;
        var errors = cargo.StandardError.ReadToEndAsync();
        await cargo.StandardOutput.ReadToEndAsync();
        await cargo.WaitForExitAsync();

        Assert.NotEqual(0, cargo.ExitCode);
        Assert.Contains("ExportFunctionForScheduledTable<Job, _>", await errors);
        Assert.Contains("`RangeFrom<f64>: IndexScanRangeBoundsTerminator` is not satisfied", await errors);
    }
}
