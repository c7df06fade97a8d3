using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.SignalR.Client;
using Procyon.Testing;
using Procyon.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Procyon.Tests;

/// <summary>
/// A hub subscriber (or <c>Results</c> stream) that stops reading, while a public function returns
/// large results: every other subscriber gets every result promptly, the server's memory stays
/// bounded, and a subscriber's connection is closed (a stream loses its oldest results instead).
/// In the timing collection: it measures the process's heap and delivery times.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class SlowSubscriberTests(ITestOutputHelper output) : OwnServerTest
{
    /// <summary>Calls before measuring, so the buffer pools the server and client keep are as full as they get.</summary>
    private const int WarmUp = 20;

    private const int Calls = 200;

    /// <summary>
    /// Results the reading subscriber may be behind when the next call is made: calls go as fast
    /// as it reads (it shares two cores with the server and the caller), not faster, so it stays
    /// within the default outbox of 4 MiB.
    /// </summary>
    private const int Window = 2;

    /// <summary>greet's arguments for a result of about 900 KB.</summary>
    private static readonly string LargeGreeting = JsonSerializer.Serialize<object[]>([new string('x', 1000), 900]);

    protected override IEnumerable<(string Database, string Module)> Published => [("example", "example")];

    [Theory]
    [InlineData("Subscribe")]
    [InlineData("Results")]
    public async Task A_subscriber_that_stops_reading_delays_nobody_and_memory_stays_bounded(string method)
    {
        await using var reader = await Server.ConnectHubAsync();
        var arrivals = Channel.CreateUnbounded<long>();
        reader.On<JsonElement>("Result", _ => arrivals.Writer.TryWrite(Stopwatch.GetTimestamp()));
        await reader.InvokeAsync("Subscribe", "example", "greet");
        var warmedUp = new List<long>();
        await CallPacedAsync(arrivals.Reader, warmedUp, WarmUp);
        Assert.True(await ReadAsync(arrivals.Reader, warmedUp, WarmUp, TimeSpan.FromSeconds(10)));
        await using var stalled = await StalledSubscriber.StartAsync(Server, method);
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);

        var arrived = new List<long>();
        var answered = await CallPacedAsync(arrivals.Reader, arrived, Calls);
        var heapGrowth = (GC.GetTotalMemory(forceFullCollection: true) - heapBefore) >> 20;
        var closed = await stalled.ClosedAsync(TimeSpan.FromSeconds(5));
        await ReadAsync(arrivals.Reader, arrived, Calls, TimeSpan.FromSeconds(10));
        var slowest = answered.Zip(arrived, Stopwatch.GetElapsedTime).DefaultIfEmpty().Max();

        var measured = $"{arrived.Count} of {Calls} results arrived, the slowest {slowest.TotalMilliseconds:0} ms after its call; the heap grew {heapGrowth} MiB; the stalled connection was {(closed ? "" : "not ")}closed";
        output.WriteLine(measured);
        Assert.True(arrived.Count == Calls && slowest < TimeSpan.FromSeconds(2) && heapGrowth < 64 && closed == (method == "Subscribe"), measured);
    }

    /// <summary>
    /// Makes <paramref name="calls"/> calls of greet, each once the reader is at most
    /// <see cref="Window"/> results behind; once it is 2 s late, the calls go on without it, as
    /// they would on a server. Returns when each call was answered.
    /// </summary>
    private async Task<List<long>> CallPacedAsync(ChannelReader<long> arrivals, List<long> arrived, int calls)
    {
        var (answered, paced) = (new List<long>(), true);
        for (var call = 0; call < calls; call++)
        {
            paced = paced && await ReadAsync(arrivals, arrived, call - Window, TimeSpan.FromSeconds(2));
            (await Server.CallAsync("example", "greet", LargeGreeting)).EnsureSuccessStatusCode();
            answered.Add(Stopwatch.GetTimestamp());
        }
        return answered;
    }

    /// <summary>Adds arrival times to <paramref name="arrived"/> until it holds <paramref name="count"/>; false when they did not come within <paramref name="timeout"/>.</summary>
    private static async Task<bool> ReadAsync(ChannelReader<long> arrivals, List<long> arrived, int count, TimeSpan timeout)
    {
        using var waiting = new CancellationTokenSource(timeout);
        try
        {
            while (arrived.Count < count)
            {
                arrived.Add(await arrivals.ReadAsync(waiting.Token));
            }
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
