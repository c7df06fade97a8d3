using System.Diagnostics;
using System.Net;
using Procyon.Storage.Tables;
using Procyon.Testing;
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
