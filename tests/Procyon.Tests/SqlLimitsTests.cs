using System.Diagnostics;
using System.Net;
using Procyon.Storage.Tables;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using Xunit.Abstractions;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>The SQL endpoint attacked by readers without a token: what they ask for is bounded, and they hold up nothing of the server's.</summary>
public sealed class SqlLimitsTests(ITestOutputHelper output)
{
    private const string HeldAdvisoryLocks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted";

    [Fact]
    public async Task Answers_of_hundreds_of_megabytes_are_refused_with_413_before_the_server_holds_them()
    {
        await using var database = await TestDatabase.CreateAsync();
        // Postgres itself takes a second or two to build 300 MB: no statement timeout in the way.
        await using var server = await ServerProcess.StartAsync(database, "--Procyon:Api:SqlTimeout=00:01:00");
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        Assert.Equal(HttpStatusCode.OK, (await server.SqlAsync("ledger", "SELECT repeat('x', 1000)")).StatusCode);
        var before = server.PeakWorkingSetBytes;

        foreach (var sql in (string[])[
            "SELECT repeat('x', 300000000)",
            "SELECT repeat('x', 50000000) FROM generate_series(1, 5)",
            "SELECT repeat('x', 1000000) FROM generate_series(1, 300)"])
        {
            var elapsed = Stopwatch.StartNew();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/databases/ledger/sql") { Content = new StringContent(sql) };
            // Headers only: should the server answer, the test does not take the bytes in either.
            using var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
            Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(20), $"{sql} took {elapsed.Elapsed}");
            var problem = await AssertProblemAsync(response, HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains("16777216 bytes", problem.Detail());
            Assert.Contains("LIMIT", problem.Detail());
            output.WriteLine($"{sql}: 413 after {elapsed.ElapsedMilliseconds} ms");
        }

        var grown = server.PeakWorkingSetBytes - before;
        output.WriteLine($"peak resident memory: {before >> 20} MiB before, grown by {grown >> 20} MiB");
        Assert.True(grown < 100 << 20, $"the server's peak resident memory grew by {grown >> 20} MiB");
        Assert.Equal(HttpStatusCode.OK, (await server.SqlAsync("ledger", "SELECT count(*) FROM account")).StatusCode);
    }

    [Fact]
    public async Task The_statement_timeout_holds_whatever_the_connection_strings_command_timeout()
    {
        await using var database = await TestDatabase.CreateAsync();
        // Reader sessions used to take Npgsql's command timeout from the server's connection string
        // (30 s unless set), which cut queries the statement timeout allowed.
        await using var server = await TestServer.StartAsync(database, $"--ConnectionStrings:Postgres={database.ConnectionString};Command Timeout=2", "--Procyon:Api:SqlTimeout=00:00:06");
        (await server.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();

        Assert.Equal(HttpStatusCode.OK, (await server.SqlAsync("ledger", "SELECT pg_sleep(3)")).StatusCode);
        var problem = await AssertProblemAsync(await server.SqlAsync("ledger", "SELECT pg_sleep(30)"), HttpStatusCode.BadRequest);
        Assert.Contains("statement timeout", problem.Detail());
    }

    [Fact]
    public void Npgsqls_command_timeout_follows_a_statement_timeout_past_its_30_s_default() =>
        Assert.Equal(46, ReadOnlyQueries.CommandTimeoutSeconds(TimeSpan.FromSeconds(45)));

    [Fact]
    public async Task A_reader_holding_the_old_catalog_lock_key_holds_up_neither_a_start_nor_a_publish()
    {
        await using var database = await TestDatabase.CreateAsync();
        await using var first = await TestServer.StartAsync(database, "--Procyon:Api:SqlTimeout=00:02:00");
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        using var stop = new CancellationTokenSource();
        // 0x70726f63796f6e: the advisory lock key servers took to create the catalog, which any session may take.
        var holder = first.Http.PostAsync("/v1/databases/ledger/sql", new StringContent("SELECT pg_advisory_lock(31651020127432558), pg_sleep(90)"), stop.Token);
        await ScheduledTablesTests.EventuallyAsync(async () => await database.ScalarAsync<long>(HeldAdvisoryLocks) == 1);

        var elapsed = Stopwatch.StartNew();
        await using (var second = await TestServer.StartAsync(database))
        {
            Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(15), $"the start took {elapsed.Elapsed}");
            output.WriteLine($"a start while a reader held the old key: {elapsed.ElapsedMilliseconds} ms");
            Assert.Equal(HttpStatusCode.Created, (await second.PublishAsync("other", "example")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await first.PublishAsync("ledger", "ledger")).StatusCode);

        Assert.Equal(1, await database.ScalarAsync<long>(HeldAdvisoryLocks));
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => holder);
    }
}

/// <summary>Reader sessions: a pool per database and reader, a cap in all, idle ones closed.</summary>
public sealed class SqlSessionTests(ITestOutputHelper output) : OwnServerTest(
    "--Procyon:Api:SqlConnectionsPerDatabase=2",
    "--Procyon:Api:SqlMaxConnections=4",
    "--Procyon:Api:SqlIdleLifetime=00:00:02",
    "--Procyon:Api:SqlTimeout=00:00:30")
{
    private const string Sleep = "SELECT pg_sleep(3)";

    private string _owner = "";

    protected override IEnumerable<(string Database, string Module)> Published => [("alpha", "ledger"), ("beta", "ledger")];

    public override async Task InitializeAsync()
    {
        await base.InitializeAsync();
        _owner = await Server.OwnerTokenAsync();
    }

    [Fact]
    public async Task Queries_beyond_a_pool_get_503_at_once_while_the_owner_and_other_databases_still_answer()
    {
        var sleepers = Enumerable.Range(0, 6).Select(_ => TimedSqlAsync("alpha", Sleep)).ToList();
        await ScheduledTablesTests.EventuallyAsync(async () => await ReaderSessionsAsync("active") == 2);

        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("alpha", "SELECT count(*) FROM refusal", _owner)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("beta", "SELECT count(*) FROM account")).StatusCode);
        var sessions = await ReaderSessionsAsync();
        Assert.InRange(sessions, 0, 4);

        var answers = await Task.WhenAll(sleepers);
        Assert.Equal(2, answers.Count(a => a.Status == HttpStatusCode.OK));
        var refused = answers.Where(a => a.Status == HttpStatusCode.ServiceUnavailable).ToList();
        Assert.Equal(4, refused.Count);
        Assert.All(refused, a =>
        {
            Assert.Equal("1", a.RetryAfter);
            Assert.Contains("SqlConnectionsPerDatabase", a.Body);
            Assert.True(a.Elapsed < TimeSpan.FromSeconds(3), $"a refusal took {a.Elapsed}");
        });
        output.WriteLine($"6 × pg_sleep(3) on one database: 2 × 200 after {answers.Where(a => a.Status == HttpStatusCode.OK).Max(a => a.Elapsed.TotalMilliseconds):0} ms, 4 × 503 after at most {refused.Max(a => a.Elapsed.TotalMilliseconds):0} ms; {sessions} reader sessions in Postgres meanwhile");
    }

    [Fact]
    public async Task Sessions_in_all_stay_under_the_cap_idle_ones_make_room_and_then_close()
    {
        var busy = (string[])["alpha", "alpha", "beta", "beta"];
        var sleepers = busy.Select(db => TimedSqlAsync(db, Sleep)).ToList();
        await ScheduledTablesTests.EventuallyAsync(async () => await ReaderSessionsAsync("active") == 4);

        var refused = await TimedSqlAsync("alpha", "SELECT 1", _owner);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.Status);
        Assert.Equal("1", refused.RetryAfter);
        Assert.Contains("SqlMaxConnections", refused.Body);
        Assert.All(await Task.WhenAll(sleepers), a => Assert.Equal(HttpStatusCode.OK, a.Status));
        // Four idle sessions now fill the cap: the owner's pool takes the place of the one used longest ago.
        Assert.Equal(HttpStatusCode.OK, (await Server.SqlAsync("alpha", "SELECT 1", _owner)).StatusCode);
        Assert.InRange(await ReaderSessionsAsync(), 0, 4);
        var idle = Stopwatch.StartNew();
        await ScheduledTablesTests.EventuallyAsync(async () => await ReaderSessionsAsync() == 0);
        output.WriteLine($"4 busy sessions: a 5th query refused in {refused.Elapsed.TotalMilliseconds:0} ms; idle sessions all closed {idle.ElapsedMilliseconds} ms after the last query");
    }

    /// <summary>The reader roles' sessions in this test's Postgres database, as <c>pg_stat_activity</c> shows them to the server's role.</summary>
    private Task<long> ReaderSessionsAsync(string? state = null) => Database.ScalarAsync<long>(
        $"SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND usename LIKE 'procyon\\_%' {(state is null ? "" : $"AND state = '{state}'")}");

    private async Task<Answer> TimedSqlAsync(string database, string sql, string? token = null)
    {
        var elapsed = Stopwatch.StartNew();
        using var response = await Server.SqlAsync(database, sql, token);
        var retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? values.Single() : null;
        return new Answer(response.StatusCode, retryAfter, await response.Content.ReadAsStringAsync(), elapsed.Elapsed);
    }

    private sealed record Answer(HttpStatusCode Status, string? RetryAfter, string Body, TimeSpan Elapsed);
}
