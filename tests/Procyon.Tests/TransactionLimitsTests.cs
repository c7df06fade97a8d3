using System.Diagnostics;
using System.Net;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>
/// A module cannot hold a transaction: not by calling tables in a loop, not by sleeping in one,
/// not by taking every slot; and a connection Postgres drops mid-call is the database's failure,
/// not the module's.
/// </summary>
public sealed class TransactionLimitsTests() : OwnServerTest("--Procyon:Runtime:TransactionTimeout=00:00:01")
{
    private const string HeldSessions =
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT count(*) FROM \"db_ledger\".\"counter\"%' AND state LIKE 'idle in transaction%'";

    protected override IEnumerable<(string Database, string Module)> Published => [("ledger", "ledger")];

    [Fact]
    public async Task Table_calls_in_a_loop_inside_with_tx_are_rolled_back_at_the_transaction_deadline_with_504()
    {
        var stopwatch = Stopwatch.StartNew();

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", "hold", ""), HttpStatusCode.GatewayTimeout);

        Assert.Contains("Procyon:Runtime:TransactionTimeout (1 s)", problem.Detail());
        Assert.InRange(stopwatch.Elapsed.TotalSeconds, 1, 5);
        Assert.Equal(0, await Database.ScalarAsync<long>(HeldSessions));
        Assert.Equal(HttpStatusCode.OK, (await Server.CallAsync("ledger", "increment", "[1]")).StatusCode);
    }

    [Theory]
    [InlineData("nap_in_reducer")]
    [InlineData("nap_in_tx")]
    public async Task Sleeping_inside_a_transaction_fails_the_call_at_once(string function)
    {
        var stopwatch = Stopwatch.StartNew();

        var problem = await AssertProblemAsync(await Server.CallAsync("ledger", function, ""), HttpStatusCode.InternalServerError);

        Assert.Contains("sleep_until was called inside a reducer or with_tx", problem.Detail());
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(1), $"took {stopwatch.Elapsed}");
        Assert.Equal(0, await Database.ScalarAsync<long>(HeldSessions));
    }

    [Fact]
    public async Task Waiting_for_a_transaction_slot_is_bounded_and_answers_503_with_Retry_After()
    {
        await using var server = await TestServer.StartAsync(
            Database, "--Procyon:Runtime:MaxConcurrentTransactions=1", "--Procyon:Runtime:TransactionSlotWait=00:00:00.200", "--Procyon:Runtime:TransactionTimeout=00:00:03");
        var holding = server.CallAsync("ledger", "hold", "");
        await ScheduledTablesTests.EventuallyAsync(async () => await Database.ScalarAsync<long>(HeldSessions) + await ActiveHoldsAsync() > 0);

        var refused = await server.CallAsync("ledger", "increment", "[1]");

        var problem = await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("all 1 transaction slots of the server (Procyon:Runtime:MaxConcurrentTransactions) stayed busy", problem.Detail());
        Assert.Equal("1", refused.Headers.RetryAfter?.ToString());
        await AssertProblemAsync(await holding, HttpStatusCode.GatewayTimeout);
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("ledger", "increment", "[1]")).StatusCode);
    }

    [Fact]
    public async Task One_database_holding_its_share_of_transaction_slots_leaves_the_others_to_other_databases()
    {
        (await Server.PublishAsync("other", "ledger")).EnsureSuccessStatusCode();
        await using var server = await TestServer.StartAsync(
            Database, "--Procyon:Runtime:MaxTransactionsPerDatabase=1", "--Procyon:Runtime:TransactionSlotWait=00:00:00.200", "--Procyon:Runtime:TransactionTimeout=00:00:03");
        var holding = server.CallAsync("ledger", "hold", "");
        await ScheduledTablesTests.EventuallyAsync(async () => await Database.ScalarAsync<long>(HeldSessions) + await ActiveHoldsAsync() > 0);

        var refused = await server.CallAsync("ledger", "increment", "[1]");
        var elsewhere = await server.CallAsync("other", "increment", "[1]");

        Assert.Contains("the 1 transaction slots of database 'ledger'", (await AssertProblemAsync(refused, HttpStatusCode.ServiceUnavailable)).Detail());
        Assert.Equal(HttpStatusCode.OK, elsewhere.StatusCode);
        await AssertProblemAsync(await holding, HttpStatusCode.GatewayTimeout);
    }

    [Fact]
    public async Task A_connection_Postgres_drops_during_a_call_is_503_and_the_server_goes_on()
    {
        await using var server = await TestServer.StartAsync(Database, "--Procyon:Runtime:TransactionTimeout=00:00:20");
        var holding = server.CallAsync("ledger", "hold", "");
        await ScheduledTablesTests.EventuallyAsync(async () => await Database.ScalarAsync<long>(HeldSessions) + await ActiveHoldsAsync() > 0);

        await Database.ExecuteAsync(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT count(*) FROM \"db_ledger\".\"counter\"%'");

        var response = await holding;
        var problem = await AssertProblemAsync(response, HttpStatusCode.ServiceUnavailable);
        Assert.Contains("the database is unavailable", problem.Detail());
        Assert.Equal("1", response.Headers.RetryAfter?.ToString());
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("ledger", "increment", "[1]")).StatusCode);
    }

    private Task<long> ActiveHoldsAsync() => Database.ScalarAsync<long>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'SELECT count(*) FROM \"db_ledger\".\"counter\"%' AND state = 'active'");
}
