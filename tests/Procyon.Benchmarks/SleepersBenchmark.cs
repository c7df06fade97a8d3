using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Procyon.Testing;

namespace Procyon.Benchmarks;

/// <summary>
/// N concurrent procedures that each sleep one second, through Procyon (Asyncify, no thread
/// per sleeper) and through a bare minimal-API endpoint that awaits <c>Task.Delay</c> — the
/// floor for an async HTTP server on this machine. Same process, same client, same N.
/// Lateness is measured on the server side: the procedure reports how long its nap really took.
/// </summary>
internal static class SleepersBenchmark
{
    public const int NapMillis = 1000;

    private const int Rounds = 3;

    private const string Http2 = "--Kestrel:EndpointDefaults:Protocols=Http2";

    public static async Task<int> RunAsync(int[] counts)
    {
        await using var database = await TestDatabase.CreateAsync();
        // HTTP/2 without TLS (prior knowledge): 10,000 calls share a few hundred connections, because
        // this machine allows a process 20,000 open files and client and server live in one process.
        await using var server = await TestServer.StartAsync(database, Http2, "--Kestrel:Limits:Http2:MaxStreamsPerConnection=100", "--Procyon:Runtime:MaxConcurrentCalls=20000", "--Procyon:Runtime:MaxIdleInstances=20000",
            // Every sleeper is anonymous and on one database; keep all their instances warm between rounds.
            "--Procyon:Runtime:MaxCallsPerIdentity=20000", "--Procyon:Runtime:MaxCallsPerDatabase=20000",
            // Sleeps in memory, which this benchmark measures: a one-second nap would otherwise be written to Postgres.
            "--Procyon:Runtime:DurableSleepAfter=1.00:00:00",
            $"--Procyon:Runtime:MaxTotalMemoryBytes={64L << 30}", $"--Procyon:Runtime:MaxIdleMemoryBytes={64L << 30}");
        await using var bare = await BareServer.StartAsync(args: Http2);
        using var client = new HttpClient(new SocketsHttpHandler { EnableMultipleHttp2Connections = true, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        {
            Timeout = TimeSpan.FromMinutes(5),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        using (var identity = await client.PostAsync(new Uri(server.Address, "/v1/identity"), null))
        {
            var token = (await identity.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString();
            // A request made by hand is HTTP/1.1 unless told, which this HTTP/2-only server refuses.
            using var publish = new HttpRequestMessage(HttpMethod.Put, new Uri(server.Address, "/v1/databases/faulty"))
            {
                Content = new ByteArrayContent(await File.ReadAllBytesAsync(Modules.PathOf("faulty"))),
                Version = client.DefaultRequestVersion,
                VersionPolicy = client.DefaultVersionPolicy,
            };
            publish.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
            (await client.SendAsync(publish)).EnsureSuccessStatusCode();
        }

        var procyon = (Nap: new Uri(server.Address, "/v1/databases/faulty/call/naps"), Body: $"[1, {NapMillis}]", Add: new Uri(server.Address, "/v1/databases/faulty/call/add"));
        var baseline = (Nap: new Uri(bare.Urls.First() + "/nap"), Body: "", Add: new Uri(bare.Urls.First() + "/add"));

        // Warm up both servers (JIT tiers, connection pools, instance pools) before measuring.
        foreach (var target in (IEnumerable<(Uri Nap, string Body, Uri Add)>)[procyon, baseline])
        {
            await RunOnceAsync(counts.Max(), "warm-up", client, target, print: false);
        }
        Console.WriteLine($"{"sleepers",8} | {"server",-8} | {"answered",8} | {"p50 late ms",11} | {"p99 late ms",11} | {"max late ms",11} | {"wall s",6} | {"peak threads",12} | {"peak RSS MiB",12} | {"add p50/max ms during",21}");
        // Three alternating rounds per count: a 2-core VM is noisy, one round proves little.
        foreach (var count in counts.SelectMany(c => Enumerable.Repeat(c, Rounds)))
        {
            var ours = await RunOnceAsync(count, "procyon", client, procyon);
            var theirs = await RunOnceAsync(count, "bare", client, baseline);
            Summary.Write($"sleepers, {count:N0} for 1 s", "p99 ms late", ours, "Task.Delay endpoint", theirs);
        }
        return 0;
    }

    /// <summary>One burst of <paramref name="count"/> sleepers; returns their p99 lateness in ms.</summary>
    private static async Task<double> RunOnceAsync(int count, string label, HttpClient client, (Uri Nap, string Body, Uri Add) target, bool print = true)
    {
        var stopwatch = Stopwatch.StartNew();
        List<double> lateness;
        List<double> addMillis;
        int answered;
        await using (var peaks = new Measure.Peaks())
        {
            var sleepers = Enumerable.Range(0, count).Select(_ => NapAsync(client, target.Nap, target.Body)).ToList();
            addMillis = await AddWhileSleepingAsync(client, target.Add, TimeSpan.FromMilliseconds(NapMillis * 0.8));
            var results = await Task.WhenAll(sleepers);
            answered = results.Count(r => r is not null);
            lateness = results.OfType<double>().Order().ToList();
            if (print)
            {
                Console.Write($"{count,8} | {label,-8} | {answered,8} | {Measure.Percentile(lateness, 50),11:0.0} | {Measure.Percentile(lateness, 99),11:0.0} | {lateness.LastOrDefault(),11:0.0} | {stopwatch.Elapsed.TotalSeconds,6:0.0} | ");
                await Task.Delay(100);
                Console.WriteLine($"{peaks.Threads,12} | {peaks.RssBytes / (1 << 20),12} | {Measure.Percentile(addMillis, 50),9:0.0} / {addMillis.LastOrDefault(),9:0.0}");
            }
        }
        return Measure.Percentile(lateness, 99);
    }

    /// <summary>Milliseconds the nap overran its target, or null when the call failed.</summary>
    private static async Task<double?> NapAsync(HttpClient client, Uri uri, string body)
    {
        try
        {
            using var response = await client.PostAsync(uri, new StringContent(body, Encoding.UTF8, "application/json"));
            if (response.StatusCode != HttpStatusCode.OK)
            {
                return null;
            }
            var micros = JsonSerializer.Deserialize<long[]>(await response.Content.ReadAsStringAsync())![0];
            return (micros - NapMillis * 1000) / 1000.0;
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    private static async Task<List<double>> AddWhileSleepingAsync(HttpClient client, Uri add, TimeSpan during)
    {
        var millis = new List<double>();
        var until = Stopwatch.StartNew();
        while (until.Elapsed < during)
        {
            var one = Stopwatch.StartNew();
            using var response = await client.PostAsync(add, new StringContent("[1,2]", Encoding.UTF8, "application/json"));
            response.EnsureSuccessStatusCode();
            millis.Add(one.Elapsed.TotalMilliseconds);
        }
        millis.Sort();
        return millis;
    }
}
