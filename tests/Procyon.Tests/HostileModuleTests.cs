using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using static Procyon.Tests.Problems;

namespace Procyon.Tests;

/// <summary>Modules that loop, eat memory or recurse: each call fails cleanly and others keep answering.</summary>
[Collection(TimingCollection.Name)]
public sealed class HostileModuleTests(ServerFixture fixture) : ServerTest(fixture)
{
    [Fact]
    public async Task Infinite_loop_returns_504_within_the_deadline_and_add_still_answers()
    {
        var stopwatch = Stopwatch.StartNew();
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "spins", "[]"), HttpStatusCode.GatewayTimeout);

        Assert.Contains("deadline", problem.Detail());
        // The deadline (500 ms) counts whole epoch ticks from the tick under way when the call
        // started, so it may end up to one tick (10 ms) sooner than 500 ms after the request.
        Assert.InRange(stopwatch.Elapsed.TotalSeconds, 0.49, 3);
        await AssertFaultyAddStillAnswersAsync();
    }

    [Fact]
    public async Task Memory_bomb_traps_with_500_and_add_still_answers()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "allocates", "[1024]"), HttpStatusCode.InternalServerError);

        Assert.Contains("out of memory: an allocation of 1073741824 bytes failed", problem.Detail());
        await AssertFaultyAddStillAnswersAsync();
    }

    [Fact]
    public async Task Allocation_within_the_limit_succeeds()
    {
        var response = await Server.CallAsync("faulty", "allocates", "[4]");

        Assert.Equal("1024", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Stack_overflow_traps_with_500_and_add_still_answers()
    {
        var problem = await AssertProblemAsync(await Server.CallAsync("faulty", "recurses", "[10000000]"), HttpStatusCode.InternalServerError);

        Assert.Contains("trapped", problem.Detail());
        await AssertFaultyAddStillAnswersAsync();
    }

    [Fact]
    public async Task Repeated_sleeps_keep_local_state_across_each_unwind_and_rewind()
    {
        var response = await Server.CallAsync("faulty", "naps", "[3, 50]");

        var naps = JsonSerializer.Deserialize<long[]>(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(3, naps.Length);
        // Each nap ends after its own target: the loop's state survived every unwind and rewind.
        Assert.All(naps, micros => Assert.InRange(micros, 50_000, 1_000_000));
    }

    [Fact]
    public async Task Concurrent_sleepers_all_answer_while_add_keeps_answering()
    {
        var sleepers = Enumerable.Range(0, 200).Select(_ => Server.CallAsync("faulty", "naps", "[1, 300]")).ToList();

        await AssertFaultyAddStillAnswersAsync();
        var responses = await Task.WhenAll(sleepers);
        Assert.All(responses, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
    }
}
