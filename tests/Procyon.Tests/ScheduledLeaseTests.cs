using System.Diagnostics;
using System.Net;
using System.Text.RegularExpressions;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procyon.Tests;

/// <summary>
/// Leases of scheduled procedure rows live as long as the server that holds them: renewed while
/// it runs them (however long they sleep), taken over a lease after it dies, handed back at once
/// when it stops. A run that slept past <c>DurableSleepAfter</c> is woken where its row went, from
/// its snapshot; one that had not starts again there. Two real server processes on one Postgres;
/// the ledger module's naps write a `start`, sleep and write a `finish`.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class ScheduledLeaseTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(3);

    private static readonly string ShortLease = $"--Procyon:Scheduler:ProcedureLease={Lease}";

    /// <summary>Naps stay in memory only: a run cut short starts again.</summary>
    private const string NoDurableSleeps = "--Procyon:Runtime:DurableSleepAfter=01:00:00";

    [Fact]
    public Task A_procedure_row_sleeping_past_its_lease_runs_once_on_two_live_servers() =>
        OnTwoServersAsync([ShortLease], async (database, first, _) =>
        {
            await ScheduleNapAsync(database, first, sleepMs: 8000);

            await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM db_ledger.nap") == 0);

            Assert.Equal(1, await EventsAsync(database, "start"));
            Assert.Equal(1, await EventsAsync(database, "finish"));
        });

    [Fact]
    public Task A_killed_servers_procedure_rows_run_elsewhere_once_their_lease_ends() =>
        OnTwoServersAsync([ShortLease, NoDurableSleeps], async (database, first, second) =>
        {
            await ScheduleNapAsync(database, first, sleepMs: 60_000);
            var (holder, other) = await HolderAsync(first, second);
            // Alive past its lease, the holder keeps the row.
            await Task.Delay(Lease + TimeSpan.FromSeconds(1));
            Assert.Equal(1, await EventsAsync(database, "start"));

            var killed = Stopwatch.StartNew();
            await holder.KillAsync();
            var taken = await TimeUntilStartedAgainAsync(database, killed);

            output.WriteLine($"killed holder's row started elsewhere after {taken.TotalMilliseconds:0} ms (lease {Lease.TotalMilliseconds:0} ms)");
            Assert.InRange(taken, Lease / 3, Lease + TimeSpan.FromSeconds(2));
            Assert.Contains("nap 1 starts", await other.LogsAsync("ledger", await first.OwnerTokenAsync()));
        });

    /// <summary>With the default lease (30 s): a row handed back runs well before it would end.</summary>
    [Fact]
    public Task A_stopped_servers_procedure_rows_run_elsewhere_at_once_and_finish_there() =>
        OnTwoServersAsync([NoDurableSleeps], async (database, first, second) =>
        {
            await ScheduleNapAsync(database, first, sleepMs: 5000);
            var (holder, _) = await HolderAsync(first, second);

            var stopped = Stopwatch.StartNew();
            await holder.StopAsync();
            var taken = await TimeUntilStartedAgainAsync(database, stopped);

            output.WriteLine($"stopped holder's row started elsewhere after {taken.TotalMilliseconds:0} ms");
            Assert.True(taken < TimeSpan.FromSeconds(5), $"took {taken}");
            // The run cut short by the stop never finished; the one elsewhere ran to the end, once.
            await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM db_ledger.nap") == 0);
            Assert.Equal(1, await EventsAsync(database, "finish"));
        });

    [Fact]
    public Task A_procedure_row_asleep_on_a_killed_server_wakes_elsewhere_at_its_time_without_starting_again() =>
        OnTwoServersAsync([ShortLease], async (database, first, second) =>
        {
            await ScheduleNapAsync(database, first, sleepMs: 6000);
            var (holder, _) = await HolderAsync(first, second);
            await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM procyon.sleeping_calls WHERE scheduled_table = 'nap'") == 1);

            await holder.KillAsync();

            await AssertNappedOnceAsync(database, TimeSpan.FromSeconds(6));
        });

    [Fact]
    public Task A_procedure_row_asleep_on_a_stopped_server_is_handed_over_and_wakes_elsewhere_at_its_time() =>
        OnTwoServersAsync([], async (database, first, second) =>
        {
            await ScheduleNapAsync(database, first, sleepMs: 5000);
            var (holder, _) = await HolderAsync(first, second);
            await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM procyon.sleeping_calls WHERE scheduled_table = 'nap'") == 1);

            await holder.StopAsync();

            await AssertNappedOnceAsync(database, TimeSpan.FromSeconds(5));
        });

    /// <summary>The nap finished once, one sleep after its one start, its row and snapshot gone and its end kept.</summary>
    private static async Task AssertNappedOnceAsync(TestDatabase database, TimeSpan sleep)
    {
        await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM db_ledger.nap") == 0);
        Assert.Equal(1, await EventsAsync(database, "start"));
        Assert.Equal(1, await EventsAsync(database, "finish"));
        var slept = TimeSpan.FromMilliseconds(await CountAsync(database, "SELECT (extract(epoch FROM max(at) - min(at)) * 1000)::bigint FROM db_ledger.nap_log"));
        Assert.InRange(slept, sleep, sleep + TimeSpan.FromSeconds(2));
        Assert.Equal(0, await CountAsync(database, "SELECT count(*) FROM procyon.sleeping_calls"));
        Assert.Equal(1, await CountAsync(database, "SELECT count(*) FROM procyon.calls WHERE fn = 'run_nap' AND status = 'ok'"));
    }

    /// <summary>A reducer run of about three leases: it keeps its row locked, so no other server runs it meanwhile.</summary>
    [Fact]
    public Task A_reducer_batch_running_past_its_lease_runs_once_on_two_live_servers() =>
        OnTwoServersAsync(["--Procyon:Scheduler:ReducerLease=00:00:01", "--Procyon:Runtime:CallTimeout=00:00:30"], async (database, first, second) =>
        {
            var spins = await SpinsForAsync(first, TimeSpan.FromSeconds(3));
            Assert.Equal(HttpStatusCode.OK, (await first.CallAsync("ledger", "schedule_grind", $"[{spins}]")).StatusCode);

            await ScheduledTablesTests.EventuallyAsync(async () => await CountAsync(database, "SELECT count(*) FROM db_ledger.grind") == 0);

            Assert.Equal(1, await CountAsync(database, "SELECT count(*) FROM db_ledger.grind_log"));
            var owner = await first.OwnerTokenAsync();
            var runs = Regex.Count(await first.LogsAsync("ledger", owner) + await second.LogsAsync("ledger", owner), "grind 1 runs");
            Assert.Equal(1, runs);
        });

    /// <summary>How many spins of the ledger's grind take about <paramref name="target"/> on this machine now.</summary>
    private static async Task<long> SpinsForAsync(ServerProcess server, TimeSpan target)
    {
        const long Probe = 50_000_000;
        var measured = Stopwatch.StartNew();
        (await server.CallAsync("ledger", "spin_for", $"[{Probe}]")).EnsureSuccessStatusCode();
        return (long)(Probe * (target / measured.Elapsed));
    }

    /// <summary>Runs <paramref name="test"/> on a fresh database with two servers side by side; the first has published the ledger module.</summary>
    private static async Task OnTwoServersAsync(string[] settings, Func<TestDatabase, ServerProcess, ServerProcess, Task> test)
    {
        await using var database = await TestDatabase.CreateAsync();
        var starting = new[] { ServerProcess.StartAsync(database, settings), ServerProcess.StartAsync(database, settings) };
        await using var first = await starting[0];
        await using var second = await starting[1];
        (await first.PublishAsync("ledger", "ledger")).EnsureSuccessStatusCode();
        await test(database, first, second);
    }

    /// <summary>Schedules one nap, due now, and waits until it started.</summary>
    private static async Task ScheduleNapAsync(TestDatabase database, ServerProcess server, int sleepMs)
    {
        Assert.Equal(HttpStatusCode.OK, (await server.CallAsync("ledger", "schedule_naps", $"[1, {sleepMs}]")).StatusCode);
        await ScheduledTablesTests.EventuallyAsync(async () => await EventsAsync(database, "start") == 1);
    }

    /// <summary>Which server runs the nap, by the servers' own module logs.</summary>
    private static async Task<(ServerProcess Holder, ServerProcess Other)> HolderAsync(ServerProcess first, ServerProcess second)
    {
        var owner = await first.OwnerTokenAsync();
        return (await first.LogsAsync("ledger", owner)).Contains("nap 1 starts", StringComparison.Ordinal) ? (first, second) : (second, first);
    }

    /// <summary>How long after the holder went (<paramref name="since"/>) the nap started again elsewhere.</summary>
    /// <remarks>When it does not start again, says where the row and the due index stood, for whoever reads the failure.</remarks>
    private static async Task<TimeSpan> TimeUntilStartedAgainAsync(TestDatabase database, Stopwatch since)
    {
        try
        {
            await ScheduledTablesTests.EventuallyAsync(async () => await EventsAsync(database, "start") == 2);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            var state = await database.QueryAsync(
                "SELECT 'row due ' || __procyon_due || ', now ' || clock_timestamp() FROM db_ledger.nap " +
                "UNION ALL SELECT 'index next_due ' || coalesce(next_due::text, 'null') FROM procyon.due WHERE db = 'ledger' AND tbl = 'nap'");
            throw new Xunit.Sdk.XunitException($"the nap did not start again within 15 s of the kill ({since.Elapsed.TotalSeconds:0.0} s): {string.Join("; ", state)}");
        }
        return since.Elapsed;
    }

    private static Task<long> EventsAsync(TestDatabase database, string kind) =>
        CountAsync(database, $"SELECT count(*) FROM db_ledger.nap_log WHERE event = '{kind}'");

    private static Task<long> CountAsync(TestDatabase database, string sql) => ScheduledTablesTests.CountAsync(database, sql);
}
